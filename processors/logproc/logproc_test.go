package logproc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProcessLogsTheRecordTruncated(t *testing.T) {
	var buf bytes.Buffer
	p := New(slog.New(slog.NewTextHandler(&buf, nil)))
	p.MaxValue = 4
	r := &kgo.Record{Topic: "orders", Partition: 2, Offset: 7, Key: []byte("c-1"), Value: []byte("abcdefgh")}
	if err := p.Process(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"topic=orders", "partition=2", "offset=7", "key=c-1", "value=abcd"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
	if strings.Contains(out, "abcde") {
		t.Errorf("value not truncated: %q", out)
	}
}
