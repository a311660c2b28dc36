package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"

	"cohort/engine/tensor"
)

const (
	// maxHeaderSize is the reference implementation's limit; a reader that
	// trusted the length prefix could otherwise be made to allocate
	// gigabytes by one flipped byte.
	maxHeaderSize = 100_000_000
	// metadataKey is the header entry reserved for the string map.
	metadataKey = "__metadata__"
	dtypeF32    = "F32"
	// chunkBytes bounds the conversion buffer, so writing a multi-GB model
	// does not need a second copy of it in memory.
	chunkBytes = 1 << 20
)

// WriteSafetensors writes tensors as one safetensors file: an 8-byte
// little-endian header length, a JSON header (metadata first, then tensors
// sorted by name, padded with spaces to a multiple of 8 bytes) and the
// float32 data of each tensor in that order. Empty metadata is left out.
func WriteSafetensors(w io.Writer, tensors map[string]*tensor.Tensor, metadata map[string]string) error {
	names := slices.Sorted(maps.Keys(tensors))
	header, err := encodeHeader(names, tensors, metadata)
	if err != nil {
		return err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	buf := make([]byte, 0, chunkBytes)
	for _, name := range names {
		for _, v := range tensors[name].Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		_, err = w.Write(buf)
	}
	return err
}

// encodeHeader builds the padded JSON header by hand: the key order
// (metadata, then names in data order) and "shape":[] for 0-dim tensors are
// part of the layout, and encoding/json would not keep either.
func encodeHeader(names []string, tensors map[string]*tensor.Tensor, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: safetensors metadata: %w", err)
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
	}
	var offset int64
	for i, name := range names {
		t := tensors[name]
		if err := checkTensor(name, t); err != nil {
			return nil, err
		}
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		key, err := json.Marshal(name)
		if err != nil {
			return nil, fmt.Errorf("%w: name %q: %w", ErrInvalidTensor, name, err)
		}
		b.Write(key)
		b.WriteString(`:{"dtype":"` + dtypeF32 + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		end := offset + 4*int64(len(t.Data))
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, offset, end)
		offset = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > maxHeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes exceeds the %d-byte limit readers enforce", ErrInvalidTensor, b.Len(), maxHeaderSize)
	}
	return b.Bytes(), nil
}

func checkTensor(name string, t *tensor.Tensor) error {
	switch {
	case name == metadataKey:
		return fmt.Errorf("%w: name %q is reserved for metadata", ErrInvalidTensor, name)
	case t == nil:
		return fmt.Errorf("%w: %q is nil", ErrInvalidTensor, name)
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("%w: %q has negative dimension in shape %v", ErrInvalidTensor, name, t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("%w: %q has %d elements, shape %v needs %d", ErrInvalidTensor, name, len(t.Data), t.Shape, n)
	}
	return nil
}
