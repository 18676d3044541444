package ordo

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The offset map is commit metadata that lists the records finished above
// the committed offset (the watermark) when the commit was made. Records
// complete out of offset order (other keys run ahead of a slow one), so
// when a partition moves to another member, or the process restarts, the
// records between the watermark and the end of the lane's tracker would all
// be redelivered. With the map, the next owner marks them done without
// running them again. Parallel Consumer keeps the same map in its commit
// metadata.
//
// Format: "ordo1:<base>:<runs>" where base is the committed offset in
// decimal and runs is unpadded base64url of uvarint pairs (gap, length):
// each run of consecutive finished offsets starts gap offsets after the end
// of the previous run (the first after base). The map is bounded by
// maxOffsetMapLen; past it the tail is left out, which only means more
// redelivery, never less processing.
const (
	offsetMapPrefix = "ordo1:"
	maxOffsetMapLen = 3800 // Kafka's default offset.metadata.max.bytes is 4096
)

// encodeOffsetMap encodes the runs of finished offsets above base. next
// yields finished offsets in increasing order, each > base, until ok is false.
func encodeOffsetMap(base int64, next func() (int64, bool)) string {
	var buf []byte
	var tmp [2 * binary.MaxVarintLen64]byte
	maxRaw := (maxOffsetMapLen - len(offsetMapPrefix) - 21) * 3 / 4
	prevEnd := base // offset after the previous run
	var runStart, runLen int64 = -1, 0
	flush := func() bool {
		if runLen == 0 {
			return true
		}
		n := binary.PutUvarint(tmp[:], uint64(runStart-prevEnd))
		n += binary.PutUvarint(tmp[n:], uint64(runLen))
		if len(buf)+n > maxRaw {
			return false
		}
		buf = append(buf, tmp[:n]...)
		prevEnd = runStart + runLen
		return true
	}
	for {
		off, ok := next()
		if !ok {
			break
		}
		if runLen > 0 && off == runStart+runLen {
			runLen++
			continue
		}
		if !flush() {
			runLen = 0
			break
		}
		runStart, runLen = off, 1
	}
	flush()
	if len(buf) == 0 {
		return ""
	}
	return offsetMapPrefix + strconv.FormatInt(base, 10) + ":" + base64.RawURLEncoding.EncodeToString(buf)
}

// decodeOffsetMap returns the finished offsets that md lists above
// committed. A map written for another offset than committed, or by
// something else than Ordo, yields nothing; a corrupt one yields an error.
func decodeOffsetMap(md string, committed int64) (map[int64]struct{}, error) {
	if !strings.HasPrefix(md, offsetMapPrefix) {
		return nil, nil
	}
	rest := md[len(offsetMapPrefix):]
	baseStr, runs, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("offset map: no base")
	}
	base, err := strconv.ParseInt(baseStr, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("offset map: base: %w", err)
	}
	if base != committed {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(runs)
	if err != nil {
		return nil, fmt.Errorf("offset map: %w", err)
	}
	done := map[int64]struct{}{}
	pos := base
	for len(raw) > 0 {
		gap, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, errors.New("offset map: bad gap")
		}
		raw = raw[n:]
		length, n := binary.Uvarint(raw)
		if n <= 0 || length == 0 {
			return nil, errors.New("offset map: bad run length")
		}
		raw = raw[n:]
		if gap > 1<<40 || length > 1<<20 || len(done)+int(length) > 1<<20 {
			return nil, errors.New("offset map: run out of range")
		}
		if pos == base && gap == 0 {
			// The committed offset itself is unfinished by definition.
			return nil, errors.New("offset map: run starts at the committed offset")
		}
		start := pos + int64(gap)
		for o := start; o < start+int64(length); o++ {
			done[o] = struct{}{}
		}
		pos = start + int64(length)
	}
	return done, nil
}
