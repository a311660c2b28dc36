package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"cohort/engine/tensor"
)

// tensorInfo is one tensor's header entry.
type tensorInfo struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// span is a validated tensor entry: where its bytes lie in the data buffer.
type span struct {
	name       string
	shape      []int
	begin, end int64
}

// ReadSafetensors decodes a safetensors file of size bytes holding F32
// tensors. It returns the tensors and the header's "__metadata__" map (nil
// when absent). Every malformed input (bad length, header or layout,
// unsupported dtype, short data) yields an error wrapping ErrCorrupt.
func ReadSafetensors(r io.ReaderAt, size int64) (map[string]*tensor.Tensor, map[string]string, error) {
	if size < 8 {
		return nil, nil, fmt.Errorf("%w: %d bytes is shorter than the 8-byte header length", ErrCorrupt, size)
	}
	var prefix [8]byte
	if err := readAt(r, prefix[:], 0); err != nil {
		return nil, nil, err
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	switch {
	case n > maxHeaderSize:
		return nil, nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrCorrupt, n, maxHeaderSize)
	case n > uint64(size-8):
		return nil, nil, fmt.Errorf("%w: header length %d beyond file size %d", ErrCorrupt, n, size)
	}
	header := make([]byte, n)
	if err := readAt(r, header, 8); err != nil {
		return nil, nil, err
	}
	infos, metadata, err := parseHeader(header)
	if err != nil {
		return nil, nil, err
	}
	dataStart := 8 + int64(n)
	spans, err := layout(infos, size-dataStart)
	if err != nil {
		return nil, nil, err
	}
	tensors := make(map[string]*tensor.Tensor, len(spans))
	buf := make([]byte, min(chunkBytes, size-dataStart))
	for _, s := range spans {
		t := &tensor.Tensor{Shape: s.shape, Data: make([]float32, (s.end-s.begin)/4)}
		for done := int64(0); done < s.end-s.begin; {
			chunk := buf[:min(int64(len(buf)), s.end-s.begin-done)]
			if err := readAt(r, chunk, dataStart+s.begin+done); err != nil {
				return nil, nil, err
			}
			out := t.Data[done/4:]
			for i := range len(chunk) / 4 {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
			}
			done += int64(len(chunk))
		}
		tensors[s.name] = t
	}
	return tensors, metadata, nil
}

// readAt fills p from off; running out of data means the file is shorter
// than its header says, which is corruption rather than an I/O failure.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	_, err := r.ReadAt(p, off)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: file ends before byte %d", ErrCorrupt, off+int64(len(p)))
	default:
		return err
	}
}

// parseHeader decodes the JSON header object key by key, because
// encoding/json silently keeps the last of duplicate keys and a duplicated
// tensor name is a corrupt file.
func parseHeader(h []byte) (map[string]tensorInfo, map[string]string, error) {
	if len(h) == 0 || h[0] != '{' {
		return nil, nil, fmt.Errorf("%w: header does not start with '{'", ErrCorrupt)
	}
	bad := func(err error) error { return fmt.Errorf("%w: header: %w", ErrCorrupt, err) }
	dec := json.NewDecoder(bytes.NewReader(h))
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	infos := make(map[string]tensorInfo)
	var metadata map[string]string
	seenMetadata := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad(err)
		}
		key := tok.(string) // object keys are always strings
		if key == metadataKey {
			if seenMetadata {
				return nil, nil, fmt.Errorf("%w: header: duplicate %q", ErrCorrupt, key)
			}
			seenMetadata = true
			if err := dec.Decode(&metadata); err != nil {
				return nil, nil, bad(fmt.Errorf("%s: %w", key, err))
			}
			continue
		}
		if _, dup := infos[key]; dup {
			return nil, nil, fmt.Errorf("%w: header: duplicate tensor name %q", ErrCorrupt, key)
		}
		var info tensorInfo
		if err := dec.Decode(&info); err != nil {
			return nil, nil, bad(fmt.Errorf("tensor %q: %w", key, err))
		}
		infos[key] = info
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	if rest := h[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) > 0 {
		return nil, nil, fmt.Errorf("%w: header has %d bytes of trailing data", ErrCorrupt, len(rest))
	}
	return infos, metadata, nil
}

// layout checks every entry and that, sorted by offset, the entries tile
// the data buffer of dataLen bytes exactly: no overlap, no gap, nothing past
// the end, nothing unaccounted for.
func layout(infos map[string]tensorInfo, dataLen int64) ([]span, error) {
	spans := make([]span, 0, len(infos))
	for name, info := range infos {
		s, err := checkInfo(name, info, dataLen)
		if err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end), cmp.Compare(a.name, b.name))
	})
	var pos int64
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return nil, fmt.Errorf("%w: tensor %q at [%d,%d) overlaps the previous tensor ending at %d", ErrCorrupt, s.name, s.begin, s.end, pos)
		case s.begin > pos:
			return nil, fmt.Errorf("%w: gap of %d bytes before tensor %q at offset %d", ErrCorrupt, s.begin-pos, s.name, s.begin)
		}
		pos = s.end
	}
	if pos != dataLen {
		return nil, fmt.Errorf("%w: tensors cover %d of the %d data bytes", ErrCorrupt, pos, dataLen)
	}
	return spans, nil
}

// checkInfo validates one entry against dataLen, guarding every product
// against overflow since shape and offsets come from the file.
func checkInfo(name string, info tensorInfo, dataLen int64) (span, error) {
	switch {
	case info.Dtype != dtypeF32:
		return span{}, fmt.Errorf("%w: tensor %q has dtype %q; cohort reads %s only", ErrCorrupt, name, info.Dtype, dtypeF32)
	case info.Shape == nil:
		return span{}, fmt.Errorf("%w: tensor %q has no shape", ErrCorrupt, name)
	case len(info.DataOffsets) != 2:
		return span{}, fmt.Errorf("%w: tensor %q has %d data_offsets, want 2", ErrCorrupt, name, len(info.DataOffsets))
	}
	begin, end := info.DataOffsets[0], info.DataOffsets[1]
	if begin > end || end > uint64(dataLen) {
		return span{}, fmt.Errorf("%w: tensor %q has offsets [%d,%d) outside the %d data bytes", ErrCorrupt, name, begin, end, dataLen)
	}
	elems := (end - begin) / 4
	n := uint64(1)
	for _, d := range info.Shape {
		if d < 0 {
			return span{}, fmt.Errorf("%w: tensor %q has negative dimension in shape %v", ErrCorrupt, name, info.Shape)
		}
		if d != 0 && n > elems/uint64(d) {
			n = elems + 1 // more than the offsets hold; keep counting to catch a later 0 or negative
			continue
		}
		n *= uint64(d)
	}
	if 4*n != end-begin {
		return span{}, fmt.Errorf("%w: tensor %q of shape %v does not fit its %d bytes at [%d,%d)", ErrCorrupt, name, info.Shape, end-begin, begin, end)
	}
	return span{name: name, shape: info.Shape, begin: int64(begin), end: int64(end)}, nil
}
