package ordo

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func encodeSlice(base int64, offs []int64) string {
	i := 0
	return encodeOffsetMap(base, func() (int64, bool) {
		if i == len(offs) {
			return 0, false
		}
		i++
		return offs[i-1], true
	})
}

func TestOffsetMapRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		base := rng.Int64N(1 << 40)
		var offs []int64
		o := base
		for range rng.IntN(300) {
			o += 1 + rng.Int64N(3) // gaps of 0-2 unfinished or absent offsets
			offs = append(offs, o)
		}
		md := encodeSlice(base, offs)
		if len(offs) == 0 {
			if md != "" {
				t.Fatalf("empty set encoded as %q", md)
			}
			continue
		}
		if len(md) > maxOffsetMapLen {
			t.Fatalf("map of %d bytes > %d", len(md), maxOffsetMapLen)
		}
		got, err := decodeOffsetMap(md, base)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(offs) {
			t.Fatalf("decoded %d offsets, want %d", len(got), len(offs))
		}
		for _, o := range offs {
			if _, ok := got[o]; !ok {
				t.Fatalf("offset %d lost", o)
			}
		}
		// A map is only valid for the offset it was committed with.
		if other, _ := decodeOffsetMap(md, base+1); len(other) != 0 {
			t.Fatal("map applied to another committed offset")
		}
	}
}

// TestOffsetMapTruncatesSafely: a map too large for commit metadata keeps a
// prefix of the finished offsets and never invents one.
func TestOffsetMapTruncatesSafely(t *testing.T) {
	var offs []int64
	for o := int64(2); o < 200000; o += 2 { // every other offset: no runs
		offs = append(offs, o)
	}
	md := encodeSlice(0, offs)
	if len(md) > maxOffsetMapLen {
		t.Fatalf("map of %d bytes", len(md))
	}
	got, err := decodeOffsetMap(md, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= len(offs) {
		t.Fatalf("kept %d of %d", len(got), len(offs))
	}
	for o := range got {
		if _, found := slices.BinarySearch(offs, o); !found {
			t.Fatalf("invented offset %d", o)
		}
		if o > offs[len(got)-1] {
			t.Fatalf("kept %d beyond the prefix", o)
		}
	}
}

func TestOffsetMapForeignMetadataIgnored(t *testing.T) {
	for _, md := range []string{"", "member-1234", "{\"json\":1}"} {
		got, err := decodeOffsetMap(md, 5)
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", md, got, err)
		}
	}
	for _, md := range []string{"ordo1:", "ordo1:x:AA", "ordo1:5:!!", "ordo1:5:AAE"} {
		if _, err := decodeOffsetMap(md, 5); err == nil {
			t.Errorf("%q: no error", md)
		}
	}
}

func TestTrackerOffsetMap(t *testing.T) {
	tr := newTracker()
	var seqs []uint64
	for o := int64(10); o < 20; o++ {
		s, _ := tr.add(o, 0, 1, time.Time{})
		seqs = append(seqs, s)
	}
	for _, i := range []int{1, 2, 3, 6, 9} { // offsets 11-13, 16, 19 finished; 10 is not
		tr.finish(seqs[i])
	}
	got, err := decodeOffsetMap(tr.offsetMap(), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{11, 12, 13, 16, 19}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, o := range want {
		if _, ok := got[o]; !ok {
			t.Errorf("missing %d", o)
		}
	}
}

// FuzzOffsetMapDecode: arbitrary metadata never panics, and whatever it
// decodes lies strictly above the committed offset.
func FuzzOffsetMapDecode(f *testing.F) {
	f.Add("ordo1:5:AQE", int64(5))
	f.Add(encodeSlice(100, []int64{101, 102, 200}), int64(100))
	f.Add("ordo1:0:", int64(0))
	f.Fuzz(func(t *testing.T, md string, committed int64) {
		got, err := decodeOffsetMap(md, committed)
		if err != nil {
			return
		}
		for o := range got {
			if o <= committed {
				t.Fatalf("decoded offset %d at or below committed %d", o, committed)
			}
		}
	})
}
