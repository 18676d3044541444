package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/replay"
)

// kcatPath finds kcat. Without it the test skips, unless
// ORDO_E2E_REQUIRE_KCAT is set (CI sets it): then it fails.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("ORDO_E2E_REQUIRE_KCAT") != "" {
			t.Fatal("kcat not found and ORDO_E2E_REQUIRE_KCAT is set: apt-get install kcat")
		}
		t.Skip("kcat not found: apt-get install kcat (set ORDO_E2E_REQUIRE_KCAT=1 to make this a failure)")
	}
	return p
}

// kcatRecord is one line of `kcat -C -J`. Strings are kept as bytes:
// kcat writes the bytes of keys, values and headers into its JSON as they
// are, except for '"', '\' and control characters, which it escapes, so
// its output is not always valid UTF-8 and encoding/json would replace
// bytes. A nil []byte is JSON null.
type kcatRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	TSType    string
	TS        int64
	Headers   [][]byte // name, value, name, value...
	Key       []byte
	Payload   []byte
}

// readKcat consumes topic from the start to its end with kcat.
func readKcat(t *testing.T, kcat, broker, topic string) []kcatRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", broker, "-C", "-t", topic, "-J", "-e", "-q", "-o", "beginning")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, stderr.String())
	}
	var recs []kcatRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := parseKcatLine(line)
		if err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// parseKcatLine decodes one kcat -J object.
func parseKcatLine(line []byte) (kcatRecord, error) {
	p := &rawJSON{b: line}
	var r kcatRecord
	if !p.eat('{') {
		return r, errors.New("no object")
	}
	for {
		name, err := p.str()
		if err != nil {
			return r, err
		}
		if !p.eat(':') {
			return r, errors.New("no colon")
		}
		switch string(name) {
		case "topic", "tstype", "key", "payload":
			v, err := p.strOrNull()
			if err != nil {
				return r, fmt.Errorf("%s: %w", name, err)
			}
			switch string(name) {
			case "topic":
				r.Topic = string(v)
			case "tstype":
				r.TSType = string(v)
			case "key":
				r.Key = v
			case "payload":
				r.Payload = v
			}
		case "partition", "offset", "ts", "broker":
			n, err := p.num()
			if err != nil {
				return r, fmt.Errorf("%s: %w", name, err)
			}
			switch string(name) {
			case "partition":
				r.Partition = int32(n)
			case "offset":
				r.Offset = n
			case "ts":
				r.TS = n
			}
		case "headers":
			if !p.eat('[') {
				return r, errors.New("headers: no array")
			}
			for !p.eat(']') {
				v, err := p.strOrNull()
				if err != nil {
					return r, fmt.Errorf("headers: %w", err)
				}
				r.Headers = append(r.Headers, v)
				p.eat(',')
			}
		default:
			return r, fmt.Errorf("unknown field %q", name)
		}
		if p.eat('}') {
			return r, nil
		}
		if !p.eat(',') {
			return r, fmt.Errorf("no comma after %s", name)
		}
	}
}

type rawJSON struct {
	b []byte
	i int
}

func (p *rawJSON) eat(c byte) bool {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t') {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *rawJSON) num() (int64, error) {
	p.eat(' ')
	j := p.i
	for j < len(p.b) && (p.b[j] == '-' || p.b[j] >= '0' && p.b[j] <= '9') {
		j++
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	p.i = j
	return n, err
}

func (p *rawJSON) strOrNull() ([]byte, error) {
	p.eat(' ')
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return nil, nil
	}
	return p.str()
}

// str reads a string: escapes decoded, other bytes kept as they are.
func (p *rawJSON) str() ([]byte, error) {
	if !p.eat('"') {
		return nil, errors.New("no string")
	}
	out := []byte{}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return out, nil
		case '\\':
			if p.i >= len(p.b) {
				return nil, errors.New("cut escape")
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if p.i+4 > len(p.b) {
					return nil, errors.New("cut \\u")
				}
				v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
				if err != nil {
					return nil, err
				}
				p.i += 4
				out = utf8.AppendRune(out, rune(v))
			default:
				return nil, fmt.Errorf("escape \\%c", e)
			}
		default:
			out = append(out, c)
		}
	}
	return nil, errors.New("unterminated string")
}

// sameBytes compares lists of byte strings, null and empty told apart.
func sameBytes(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) || (a[i] == nil) != (b[i] == nil) {
			return false
		}
	}
	return true
}

// `ordo replay copy` of a time window, checked record by record with
// kcat, an independent client (librdkafka): the target holds exactly the
// source records whose timestamps lie in [--from-time, --to-time), each
// with its key (null and empty told apart), value, headers and timestamp
// byte for byte, then ordo-replay-source and ordo-replay-id; every key in
// one target partition (the murmur2 one), in source order.
func TestReplayCopyWindowCheckedWithKcat(t *testing.T) {
	kcat := kcatPath(t)
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders"), kfake.SeedTopics(4, "orders.replay")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range int32(3) {
		for o := range 40 {
			r := &kgo.Record{Topic: "orders", Partition: p, Timestamp: replayBase.Add(time.Duration(o) * 250 * time.Millisecond)}
			switch o % 5 {
			case 0: // no key
			case 1:
				r.Key = []byte{}
			default:
				r.Key = []byte{'c', byte('0' + o%3), 0xc3, 0xa9, 0x00, 0xff} // é, NUL, a byte that is not UTF-8
			}
			r.Value = []byte(fmt.Sprintf("{\"p\":%d,\"o\":%d,\"s\":\"tab\\t\\\\ \"}", p, o))
			r.Value = append(r.Value, 0x01, 0x80, 0xfe)
			if o == 13 {
				r.Value = nil
			}
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte("t-" + strconv.Itoa(o))}, {Key: "empty", Value: []byte{}}, {Key: "bin", Value: []byte{0, 0xff, '"'}}, {Key: "null", Value: nil}}
			recs = append(recs, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	from, to := replayBase.Add(2*time.Second), replayBase.Add(7*time.Second) // offsets 8..27 of each partition
	code, out, errb := run("replay", "copy", "--brokers", b.Addr(), "--from", "orders", "--into", "orders.replay",
		"--from-time", from.Format(time.RFC3339), "--to-time", to.Format(time.RFC3339), "--id", "e2e-window", "--progress", "none")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	t.Logf("ordo replay copy:\n%s", out)

	src := readKcat(t, kcat, b.Addr(), "orders")
	dst := readKcat(t, kcat, b.Addr(), "orders.replay")
	bySource := map[string]kcatRecord{}
	var inWindow []string
	for _, r := range src {
		id := fmt.Sprintf("orders/%d/%d", r.Partition, r.Offset)
		bySource[id] = r
		if r.TS >= from.UnixMilli() && r.TS < to.UnixMilli() {
			inWindow = append(inWindow, id)
		}
	}
	if len(src) != 120 || len(inWindow) != 60 {
		t.Fatalf("kcat read %d source records, %d in the window; want 120 and 60", len(src), len(inWindow))
	}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("orders.replay")
	seen := map[string]bool{}
	keyPart := map[string]int32{}
	lastOfKey := map[string]int64{} // source partition + key -> last source offset, in target order
	for _, r := range dst {
		n := len(r.Headers)
		if n < 4 || string(r.Headers[n-4]) != replay.HeaderSource || string(r.Headers[n-2]) != replay.HeaderID {
			t.Errorf("orders.replay/%d/%d: headers %q do not end with the replay headers", r.Partition, r.Offset, r.Headers)
			continue
		}
		id := string(r.Headers[n-3])
		if string(r.Headers[n-1]) != "e2e-window" {
			t.Errorf("%s: ordo-replay-id %q", id, r.Headers[n-1])
		}
		s, ok := bySource[id]
		if !ok {
			t.Errorf("orders.replay/%d/%d names source %q, which kcat did not read", r.Partition, r.Offset, id)
			continue
		}
		if seen[id] {
			t.Errorf("%s copied twice", id)
		}
		seen[id] = true
		if !bytes.Equal(r.Key, s.Key) || (r.Key == nil) != (s.Key == nil) {
			t.Errorf("%s: key %q (null %v), source %q (null %v)", id, r.Key, r.Key == nil, s.Key, s.Key == nil)
		}
		if !bytes.Equal(r.Payload, s.Payload) || (r.Payload == nil) != (s.Payload == nil) {
			t.Errorf("%s: payload %q, source %q", id, r.Payload, s.Payload)
		}
		if r.TS != s.TS || r.TSType != "create" {
			t.Errorf("%s: timestamp %d (%s), source %d", id, r.TS, r.TSType, s.TS)
		}
		if !sameBytes(r.Headers[:n-4], s.Headers) {
			t.Errorf("%s: headers %q, source %q", id, r.Headers[:n-4], s.Headers)
		}
		if s.Key != nil {
			k := string(s.Key)
			if want := int32(part.Partition(&kgo.Record{Key: s.Key}, 4)); r.Partition != want {
				t.Errorf("%s: key %q in orders.replay/%d, murmur2 says %d", id, k, r.Partition, want)
			}
			if p, ok := keyPart[k]; ok && p != r.Partition {
				t.Errorf("key %q in orders.replay/%d and /%d", k, p, r.Partition)
			}
			keyPart[k] = r.Partition
			sk := fmt.Sprintf("%d/%s", s.Partition, k)
			if last, ok := lastOfKey[sk]; ok && s.Offset < last {
				t.Errorf("key %q of orders/%d: offset %d after %d in the target", k, s.Partition, s.Offset, last)
			}
			lastOfKey[sk] = s.Offset
		}
	}
	for _, id := range inWindow {
		if !seen[id] {
			t.Errorf("%s is in the window and was not copied", id)
		}
	}
	if len(dst) != len(inWindow) {
		t.Errorf("the target holds %d records, the window %d", len(dst), len(inWindow))
	}
	if h := src[0].Headers; len(h) != 8 || h[7] != nil || h[3] == nil {
		t.Errorf("kcat does not tell a null header value from an empty one: %q", h)
	}
	t.Logf("kcat: %d source records, %d in the window, %d in the target, all equal byte for byte", len(src), len(inWindow), len(dst))
}
