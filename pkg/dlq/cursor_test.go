package dlq

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestCursorModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		c := cursor{next: int64(rng.IntN(5))}
		model := make(map[int64]bool)
		for o := range c.next {
			model[o] = true
		}
		for range rng.IntN(60) {
			if rng.IntN(10) == 0 {
				start := int64(rng.IntN(80))
				c.floor(start)
				for o := range start {
					model[o] = true
				}
				continue
			}
			o := int64(rng.IntN(80))
			c.add(o)
			model[o] = true
		}
		for o := range int64(100) {
			if c.has(o) != model[o] {
				t.Fatalf("round %d: has(%d) = %v, model %v; cursor %+v", round, o, c.has(o), model[o], c)
			}
		}
		checkNormal(t, c)
		at, md := c.encode()
		back, err := decodeCursor(at, md)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round %d: decode(encode(%+v)) = %+v, %v (metadata %q)", round, c, back, err, md)
		}
	}
}

func checkNormal(t *testing.T, c cursor) {
	t.Helper()
	prev := c.next
	for i, r := range c.ranges {
		if r.From > r.To || r.From <= prev || (i > 0 && r.From == prev) {
			t.Fatalf("cursor not normal: %+v", c)
		}
		prev = r.To + 1
	}
}

func TestCursorEncoding(t *testing.T) {
	c := cursor{next: 10, ranges: []Range{{12, 12}, {20, 56}}}
	at, md := c.encode()
	if at != 10 || md != "ordo-redrive/1:2.1,7.11" {
		t.Fatalf("encode = %d %q", at, md)
	}
	// Commits that a redrive did not write: the committed offset alone.
	for _, md := range []string{"", "something else", cursorPrefix} {
		if c, err := decodeCursor(7, md); err != nil || c.next != 7 || c.ranges != nil {
			t.Errorf("decodeCursor(7, %q) = %+v, %v", md, c, err)
		}
	}
	if c, err := decodeCursor(-1, ""); err != nil || c.next != 0 {
		t.Errorf("no commit: %+v, %v", c, err)
	}
	for _, md := range []string{"0.1", "1.0", "1", "1.1,", "!.1", "1.-1", "1.1.1", "zzzzzzzzzzzzz.1", "1." + strings.Repeat("z", 13)} {
		if c, err := decodeCursor(0, cursorPrefix+md); err == nil {
			t.Errorf("decodeCursor(%q) = %+v, want an error", md, c)
		}
	}
	// The largest offsets do not overflow.
	if _, err := decodeCursor(math.MaxInt64-3, cursorPrefix+"1.3"); err == nil {
		t.Error("a range ending at MaxInt64 decoded")
	}
}

// FuzzCursorDecode feeds commit metadata from outside (anyone can commit to
// the cursor group): decoding never panics, and what decodes is a normal
// cursor that encodes back to itself.
func FuzzCursorDecode(f *testing.F) {
	for _, s := range []string{"", cursorPrefix, cursorPrefix + "1.1", cursorPrefix + "2.1,7.11", cursorPrefix + "1.1,1.1", "x", cursorPrefix + "zzzzzzzzzzzz.zzzzzzzzzzzz"} {
		f.Add(int64(10), s)
	}
	f.Fuzz(func(t *testing.T, at int64, md string) {
		c, err := decodeCursor(at, md)
		if err != nil {
			return
		}
		checkNormal(t, c)
		at2, md2 := c.encode()
		back, err := decodeCursor(at2, md2)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("re-decode of %+v: %+v, %v", c, back, err)
		}
	})
}
