package ordo

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The offset map is commit metadata that lists the records finished above
// the committed offset (the watermark) when the commit was made. Records
// complete out of offset order (other keys run ahead of a slow one), so
// when a partition moves to another member, or the process restarts, the
// records between the watermark and the end of the lane's tracker would all
// be redelivered. With the map, the next owner marks them done instead of
// running them again, and carries the part it has not received yet into its
// own commits. Parallel Consumer keeps the same map in its commit metadata.
//
// Format (version 2): "ordo2:<base>:<payload>" where base is the committed
// offset in decimal and payload is unpadded base64url of one kind byte and
// the body:
//
//	kind 0  run-length: uvarint pairs (gap, length); each run of consecutive
//	        finished offsets starts gap offsets after the end of the
//	        previous run (the first after base, so its gap is at least 1)
//	kind 1  bitset: uvarint nbits, then nbits bits, least significant first;
//	        bit i set means offset base+1+i is finished
//	kind|0x80  the body is DEFLATE-compressed
//
// The encoder writes the smallest of the four. Version 1 ("ordo1:", the
// run-length body without a kind byte) is still read.
//
// A map must fit the broker's offset.metadata.max.bytes (Kafka's default is
// 4096). Lanes keep what they must encode within Config.MaxOffsetMapBytes
// (see mapCapacity), so the encoder never has to drop runs; if it must
// anyway, it drops them from the tail, which only means more redelivery,
// never less processing, and says so.
const (
	offsetMapPrefixV1 = "ordo1:"
	offsetMapPrefixV2 = "ordo2:"

	mapKindRLE    = 0
	mapKindBitset = 1
	mapDeflated   = 0x80

	// deflateOver is the body size above which compression is tried (a
	// small map fits anyway, and a compressor costs a few hundred KB).
	deflateOver = 512

	// maxDecodedOffsets bounds what a decoded map may list, and
	// maxInflated the size a compressed body may inflate to.
	maxDecodedOffsets = 1 << 22
	maxInflated       = 1 << 20
)

// mapCapacity is what an offset map of at most maxLen bytes can always
// hold, whatever the pattern: a bitset of window offsets above the base,
// or runs run-length pairs of at most 6 bytes each (gaps and lengths under
// 2^21, which MaxTrackedSpan's limit ensures).
type mapCapacity struct {
	window int64 // offsets above the base that a bitset can cover
	runs   int   // runs that run-length encoding can hold
}

// headerRoom is the prefix, a base of up to 19 digits and the colon.
const headerRoom = len(offsetMapPrefixV2) + 19 + 1

func capacityFor(maxLen int) mapCapacity {
	raw := (maxLen-headerRoom)*3/4 - 1 // base64, kind byte
	if raw <= 4 {
		return mapCapacity{}
	}
	return mapCapacity{window: int64(raw-3) * 8, runs: raw / 6}
}

// encodeOffsetMap encodes runs (finished offsets above base, in order,
// disjoint, none starting at base) in at most maxLen bytes. It returns ""
// when there are no runs. dropped counts the offsets left out because the
// map would not fit.
func encodeOffsetMap(base int64, runs []offRun, maxLen int) (md string, dropped int64) {
	for len(runs) > 0 && runs[0].start <= base { // cannot happen; never encode a bad map
		runs = runs[1:]
	}
	if len(runs) == 0 {
		return "", 0
	}
	md = encodeRuns(base, runs)
	if len(md) <= maxLen {
		return md, 0
	}
	// Keep the longest prefix of runs that fits.
	lo, hi := 0, len(runs) // runs[:lo] fits; runs[:hi] does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if len(encodeRuns(base, runs[:mid])) <= maxLen {
			lo = mid
		} else {
			hi = mid
		}
	}
	for _, r := range runs[lo:] {
		dropped += r.n
	}
	if lo == 0 {
		return "", dropped
	}
	return encodeRuns(base, runs[:lo]), dropped
}

func encodeRuns(base int64, runs []offRun) string {
	best := rleBody(base, runs)
	if bs, ok := bitsetBody(base, runs, len(best)); ok {
		best = bs
	}
	if len(best) > deflateOver {
		if z := deflate(best); len(z) < len(best) {
			best = z
		}
	}
	return offsetMapPrefixV2 + strconv.FormatInt(base, 10) + ":" + base64.RawURLEncoding.EncodeToString(best)
}

func rleBody(base int64, runs []offRun) []byte {
	buf := make([]byte, 1, 1+len(runs)*4)
	buf[0] = mapKindRLE
	prevEnd := base
	for _, r := range runs {
		buf = binary.AppendUvarint(buf, uint64(r.start-prevEnd))
		buf = binary.AppendUvarint(buf, uint64(r.n))
		prevEnd = r.end()
	}
	return buf
}

// bitsetBody returns the bitset body if it is shorter than limit bytes.
func bitsetBody(base int64, runs []offRun, limit int) ([]byte, bool) {
	nbits := runs[len(runs)-1].end() - base - 1
	size := 1 + binary.MaxVarintLen64 + (nbits+7)/8
	if size >= int64(limit)+binary.MaxVarintLen64 {
		return nil, false
	}
	buf := make([]byte, 1, size)
	buf[0] = mapKindBitset
	buf = binary.AppendUvarint(buf, uint64(nbits))
	hdr := len(buf)
	buf = buf[:hdr+int((nbits+7)/8)]
	for _, r := range runs {
		for o := r.start; o < r.end(); o++ {
			i := o - base - 1
			buf[hdr+int(i/8)] |= 1 << (i % 8)
		}
	}
	return buf, len(buf) < limit
}

func deflate(body []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(body[0] | mapDeflated)
	w, _ := flate.NewWriter(&b, flate.BestCompression) // the level is valid
	_, _ = w.Write(body[1:])
	_ = w.Close()
	return b.Bytes()
}

// decodeOffsetMap returns the runs of finished offsets that md lists above
// committed. A map written for another offset than committed, or by
// something else than Ordo, yields nothing; a corrupt one yields an error.
func decodeOffsetMap(md string, committed int64) ([]offRun, error) {
	var rest string
	v2 := false
	switch {
	case strings.HasPrefix(md, offsetMapPrefixV2):
		rest, v2 = md[len(offsetMapPrefixV2):], true
	case strings.HasPrefix(md, offsetMapPrefixV1):
		rest = md[len(offsetMapPrefixV1):]
	default:
		return nil, nil
	}
	baseStr, payload, ok := strings.Cut(rest, ":")
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
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("offset map: %w", err)
	}
	if !v2 {
		return decodeRLE(base, raw)
	}
	if len(raw) == 0 {
		return nil, errors.New("offset map: empty payload")
	}
	kind, body := raw[0], raw[1:]
	if kind&mapDeflated != 0 {
		r := flate.NewReader(bytes.NewReader(body))
		body, err = io.ReadAll(io.LimitReader(r, maxInflated+1))
		_ = r.Close()
		if err != nil {
			return nil, fmt.Errorf("offset map: inflating: %w", err)
		}
		if len(body) > maxInflated {
			return nil, errors.New("offset map: inflates past its bound")
		}
		kind &^= mapDeflated
	}
	switch kind {
	case mapKindRLE:
		return decodeRLE(base, body)
	case mapKindBitset:
		return decodeBitset(base, body)
	}
	return nil, fmt.Errorf("offset map: unknown kind %d", kind)
}

func decodeRLE(base int64, raw []byte) ([]offRun, error) {
	var out []offRun
	pos := base
	var total int64
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
		if gap > 1<<40 || length > maxDecodedOffsets || total+int64(length) > maxDecodedOffsets {
			return nil, errors.New("offset map: run out of range")
		}
		if gap == 0 {
			if pos == base {
				// The committed offset itself is unfinished by definition.
				return nil, errors.New("offset map: run starts at the committed offset")
			}
			return nil, errors.New("offset map: runs not separated")
		}
		r := offRun{start: pos + int64(gap), n: int64(length)}
		out = append(out, r)
		total += r.n
		pos = r.end()
	}
	return out, nil
}

func decodeBitset(base int64, raw []byte) ([]offRun, error) {
	nbits, n := binary.Uvarint(raw)
	if n <= 0 || nbits > maxDecodedOffsets {
		return nil, errors.New("offset map: bad bitset length")
	}
	bits := raw[n:]
	if uint64(len(bits)) != (nbits+7)/8 {
		return nil, errors.New("offset map: bitset length does not match")
	}
	var out []offRun
	for i := uint64(0); i < nbits; i++ {
		if bits[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		o := base + 1 + int64(i)
		if k := len(out); k > 0 && out[k-1].end() == o {
			out[k-1].n++
		} else {
			out = append(out, offRun{start: o, n: 1})
		}
	}
	return out, nil
}
