package ordo

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// runsOf turns sorted distinct offsets into runs.
func runsOf(offs []int64) []offRun {
	var out []offRun
	for _, o := range offs {
		if k := len(out); k > 0 && out[k-1].end() == o {
			out[k-1].n++
		} else {
			out = append(out, offRun{start: o, n: 1})
		}
	}
	return out
}

func offsetsOf(runs []offRun) map[int64]bool {
	out := map[int64]bool{}
	for _, r := range runs {
		for o := r.start; o < r.end(); o++ {
			out[o] = true
		}
	}
	return out
}

// TestOffsetMapRoundTrip: random done sets of every shape (dense, sparse,
// clustered) decode to exactly what was encoded, within the length bound,
// and a map applies only to the offset it was committed with.
func TestOffsetMapRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		base := rng.Int64N(1 << 40)
		var offs []int64
		o := base
		maxGap := []int64{1, 2, 3, 50, 1000}[i%5]
		for range rng.IntN(600) {
			o += 1 + rng.Int64N(maxGap)
			offs = append(offs, o)
		}
		md, dropped := encodeOffsetMap(base, runsOf(offs), DefaultMaxOffsetMapBytes)
		if len(offs) == 0 {
			if md != "" {
				t.Fatalf("empty set encoded as %q", md)
			}
			continue
		}
		if len(md) > DefaultMaxOffsetMapBytes {
			t.Fatalf("map of %d bytes > %d", len(md), DefaultMaxOffsetMapBytes)
		}
		got, err := decodeOffsetMap(md, base)
		if err != nil {
			t.Fatal(err)
		}
		gotSet := offsetsOf(got)
		if int64(len(gotSet))+dropped != int64(len(offs)) {
			t.Fatalf("decoded %d offsets + %d dropped, want %d", len(gotSet), dropped, len(offs))
		}
		if dropped == 0 {
			for _, o := range offs {
				if !gotSet[o] {
					t.Fatalf("offset %d lost", o)
				}
			}
		}
		if other, _ := decodeOffsetMap(md, base+1); len(other) != 0 {
			t.Fatal("map applied to another committed offset")
		}
	}
}

// TestOffsetMapPicksTheSmallest: a dense, fragmented set is written as a
// bitset (run-length would not fit), a few long runs as run-length, and
// every set the capacity promises fits.
func TestOffsetMapPicksTheSmallest(t *testing.T) {
	capy := capacityFor(DefaultMaxOffsetMapBytes)
	// Every other offset over the whole bitset window: runs = window/2,
	// far more than run-length can hold, but a bitset can.
	var offs []int64
	for o := int64(2); o < capy.window; o += 2 {
		offs = append(offs, o)
	}
	md, dropped := encodeOffsetMap(0, runsOf(offs), DefaultMaxOffsetMapBytes)
	if dropped != 0 || len(md) > DefaultMaxOffsetMapBytes {
		t.Fatalf("window of %d offsets: %d bytes, %d dropped", capy.window, len(md), dropped)
	}
	if k := mapKind(t, md); k&^mapDeflated != mapKindBitset {
		t.Errorf("fragmented set written as kind %d, want a bitset", k)
	}
	// capacity.runs runs spread far apart: only run-length can hold them.
	var runs []offRun
	for i := range capy.runs {
		runs = append(runs, offRun{start: int64(1 + i*4000), n: int64(1 + i%3000)})
	}
	md, dropped = encodeOffsetMap(0, runs, DefaultMaxOffsetMapBytes)
	if dropped != 0 || len(md) > DefaultMaxOffsetMapBytes {
		t.Fatalf("%d runs: %d bytes, %d dropped", capy.runs, len(md), dropped)
	}
	got, err := decodeOffsetMap(md, 0)
	if err != nil || len(got) != len(runs) {
		t.Fatalf("decoded %d runs, err %v", len(got), err)
	}
}

func mapKind(t *testing.T, md string) byte {
	t.Helper()
	parts := strings.SplitN(md, ":", 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return raw[0]
}

// TestOffsetMapTruncatesSafely: a set too large for the bound keeps a
// prefix of the finished offsets, says how many it dropped, and never
// invents one.
func TestOffsetMapTruncatesSafely(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var offs []int64
	for o := int64(2); o < 400000; o += 2 + rng.Int64N(3) { // random gaps: nothing compresses much
		offs = append(offs, o)
	}
	md, dropped := encodeOffsetMap(0, runsOf(offs), DefaultMaxOffsetMapBytes)
	if len(md) > DefaultMaxOffsetMapBytes {
		t.Fatalf("map of %d bytes", len(md))
	}
	got, err := decodeOffsetMap(md, 0)
	if err != nil {
		t.Fatal(err)
	}
	gotSet := offsetsOf(got)
	if len(gotSet) == 0 || dropped == 0 || int64(len(gotSet))+dropped != int64(len(offs)) {
		t.Fatalf("kept %d, dropped %d, of %d", len(gotSet), dropped, len(offs))
	}
	for i, o := range offs {
		if (i < len(gotSet)) != gotSet[o] {
			t.Fatalf("offset %d (#%d): kept %v; want exactly the first %d", o, i, gotSet[o], len(gotSet))
		}
	}
}

// TestOffsetMapReadsVersion1: maps committed by earlier versions still
// apply after an upgrade.
func TestOffsetMapReadsVersion1(t *testing.T) {
	var raw []byte
	for _, v := range []uint64{1, 3, 2, 1} { // 11-13 and 16 above base 10
		raw = binary.AppendUvarint(raw, v)
	}
	got, err := decodeOffsetMap("ordo1:10:"+base64.RawURLEncoding.EncodeToString(raw), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []offRun{{11, 3}, {16, 1}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestOffsetMapForeignMetadataIgnored(t *testing.T) {
	for _, md := range []string{"", "member-1234", "{\"json\":1}"} {
		got, err := decodeOffsetMap(md, 5)
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", md, got, err)
		}
	}
	for _, md := range []string{"ordo1:", "ordo1:x:AA", "ordo1:5:!!", "ordo1:5:AAE", "ordo2:5:", "ordo2:5:Bw", "ordo2:5:AQ"} {
		if _, err := decodeOffsetMap(md, 5); err == nil {
			t.Errorf("%q: no error", md)
		}
	}
}

// TestTrackerDoneRuns: the runs the tracker gives a commit are its
// finished entries above the watermark, then the inherited runs not
// received yet.
func TestTrackerDoneRuns(t *testing.T) {
	tr := newTracker()
	tr.inherit([]offRun{{25, 5}, {40, 2}})
	var seqs []uint64
	for o := int64(10); o < 20; o++ {
		s, _ := tr.add(o, 0, 1, time.Time{})
		seqs = append(seqs, s)
	}
	for _, i := range []int{1, 2, 3, 6, 9} { // offsets 11-13, 16, 19 finished; 10 is not
		tr.finish(seqs[i])
	}
	var got []offRun
	tr.doneRuns(func(r offRun) bool { got = append(got, r); return true })
	want := []offRun{{11, 3}, {16, 1}, {19, 1}, {25, 5}, {40, 2}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if tr.runs != 3 {
		t.Errorf("runs = %d, want 3", tr.runs)
	}
}

// FuzzOffsetMapDecode: arbitrary metadata never panics, and whatever it
// decodes lies strictly above the committed offset, in order, disjoint.
func FuzzOffsetMapDecode(f *testing.F) {
	f.Add("ordo1:5:AQE", int64(5))
	md, _ := encodeOffsetMap(100, []offRun{{101, 2}, {200, 1}}, 4096)
	f.Add(md, int64(100))
	f.Add("ordo2:0:AQMF", int64(0))
	f.Add("ordo1:0:", int64(0))
	f.Fuzz(func(t *testing.T, md string, committed int64) {
		got, err := decodeOffsetMap(md, committed)
		if err != nil {
			return
		}
		prev := committed
		for _, r := range got {
			if r.start <= prev || r.n <= 0 {
				t.Fatalf("decoded run %v at or below %d", r, prev)
			}
			prev = r.end() - 1
		}
	})
}

// FuzzOffsetMapRoundTrip: any done set encodes within the bound, and
// decodes to exactly what was kept: a prefix of the runs, the rest counted
// as dropped.
func FuzzOffsetMapRoundTrip(f *testing.F) {
	f.Add(int64(0), []byte{1, 1, 2, 3, 255, 255, 9, 1}, uint16(4096))
	f.Add(int64(1<<40), []byte{0, 0, 0, 0}, uint16(300))
	f.Fuzz(func(t *testing.T, base int64, shape []byte, maxLen uint16) {
		if base < 0 || base > 1<<50 || maxLen < 256 {
			return
		}
		var runs []offRun
		o := base
		for i := 0; i+1 < len(shape); i += 2 {
			o += int64(shape[i]) + 1 // gaps of at least one unfinished offset
			r := offRun{start: o, n: int64(shape[i+1])%64 + 1}
			runs = append(runs, r)
			o = r.end()
		}
		md, dropped := encodeOffsetMap(base, runs, int(maxLen))
		if len(md) > int(maxLen) {
			t.Fatalf("map of %d bytes > %d", len(md), maxLen)
		}
		got, err := decodeOffsetMap(md, base)
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		var want, kept int64
		for _, r := range runs {
			want += r.n
		}
		gotSet := offsetsOf(got)
		kept = int64(len(gotSet))
		if kept+dropped != want {
			t.Fatalf("kept %d + dropped %d != %d", kept, dropped, want)
		}
		// What was kept is exactly the first kept offsets of the set.
		all := offsetsOf(runs)
		for off := range gotSet {
			if !all[off] {
				t.Fatalf("invented offset %d", off)
			}
		}
	})
}
