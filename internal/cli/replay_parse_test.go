package cli

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlexDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "1h30m": 90 * time.Minute, "PT1H30M": 90 * time.Minute, "pt15m": 15 * time.Minute,
		"P1DT12H": 36 * time.Hour, "P2D": 48 * time.Hour, "PT0.5S": 500 * time.Millisecond, "-PT1M": -time.Minute,
	} {
		if got, err := parseFlexDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "P1H", "PT1M1H", "PT1.5M", "P1DT", "1d", "PTM", "P-1D"} {
		if got, err := parseFlexDuration(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}

func TestParsePartitions(t *testing.T) {
	got, err := parsePartitions("4,0,2-4,2")
	if err != nil || !reflect.DeepEqual(got, []int32{0, 2, 3, 4}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, in := range []string{"", "1,", "a", "4-2", "-1", "0-2147483648", "0-200000"} {
		if _, err := parsePartitions(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"500/s": 500, "60/m": 1, "3600/h": 1, "250": 250, "0.5/s": 0.5} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0/s", "-1", "5/d", "fast", "1e12/s"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseSelection(t *testing.T) {
	s, err := parseSelection("orders:0-2,7")
	if err != nil || s.Topic != "orders" || !reflect.DeepEqual(s.Partitions, []int32{0, 1, 2, 7}) {
		t.Errorf("got %+v, %v", s, err)
	}
	if s, err := parseSelection("orders"); err != nil || s.Partitions != nil {
		t.Errorf("all partitions: %+v, %v", s, err)
	}
	for _, in := range []string{"", ":1", "orders:", "or ders", "orders:1:2"} {
		if _, err := parseSelection(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParsePartitions(f *testing.F) {
	for _, s := range []string{"0", "0,1,2", "0-3", "4,0,2-4", "-", "1-", "99999-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := parsePartitions(in)
		if err != nil {
			return
		}
		if len(ps) == 0 || !slices.IsSorted(ps) || len(slices.Compact(slices.Clone(ps))) != len(ps) || ps[0] < 0 {
			t.Fatalf("%q: %v", in, ps)
		}
	})
}

func FuzzParseFlexDuration(f *testing.F) {
	for _, s := range []string{"90m", "PT1H30M", "P1DT12H", "PT0.5S", "-PT1M", "P9999999999999D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseFlexDuration(in)
	})
}

// The replay commands name their common flags as the other commands do.
func TestReplayCommonFlagNames(t *testing.T) {
	root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for path, flags := range map[string][]string{
		"replay reset": {"brokers", "group", "topic", "timeout", "connect-timeout"},
		"replay copy":  {"brokers", "connect-timeout"},
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flags {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("ordo %s has no --%s", path, f)
			}
		}
	}
}
