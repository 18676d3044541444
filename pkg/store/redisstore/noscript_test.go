package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/store"
)

// TestScriptReloaded: a server that does not know a script the store
// believes loaded (after a restart or a SCRIPT FLUSH) answers NOSCRIPT; the
// store loads it and runs the writes again, failing none. (The test does
// not flush the shared server's scripts: it uses a script no one loaded.)
func TestScriptReloaded(t *testing.T) {
	client := testenv.Redis(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "ordotest:" + hex.EncodeToString(b[:]) + ":"
	defer func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	}()
	sc := NewScript("-- " + hex.EncodeToString(b[:]) + "\nreturn redis.call('INCR', KEYS[1])")
	st, err := New(Options{Client: client, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.mu.Lock()
	st.loaded[sc] = true // as if loaded before the server forgot it
	st.mu.Unlock()
	o, v, err := st.Apply(context.Background(), store.Op{Key: "k"}, sc, []string{prefix + "n"})
	if err != nil || o != store.Applied || v != int64(1) {
		t.Fatalf("after NOSCRIPT: %v %v %v; want applied 1", o, v, err)
	}
}
