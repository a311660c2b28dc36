package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"strings"
	"testing"

	"cohort/engine/tensor"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	big := tensor.New(700, 500) // 1.4 MB: crosses the 1 MiB conversion chunk
	for i := range big.Data {
		big.Data[i] = float32(i%1013) - 506
	}
	tests := []struct {
		name     string
		tensors  map[string]*tensor.Tensor
		metadata map[string]string
	}{
		{"model and optimizer", sampleTensors(1), producerMetadata()},
		{"empty metadata", sampleTensors(-2), nil},
		{"only a 0-dim tensor", map[string]*tensor.Tensor{"s": tensor.FromData([]float32{3}, []int{}...)}, nil},
		{"zero-size dimension", map[string]*tensor.Tensor{"e": tensor.New(0, 3), "f": tensor.New(2)}, nil},
		{"no tensors", map[string]*tensor.Tensor{}, map[string]string{"note": "empty"}},
		{"large", map[string]*tensor.Tensor{"model.big": big, "model.small": tensor.New(1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteSafetensors(&buf, tt.tensors, tt.metadata); err != nil {
				t.Fatal(err)
			}
			headerLen := binary.LittleEndian.Uint64(buf.Bytes())
			if (8+headerLen)%8 != 0 {
				t.Errorf("data starts at %d, not 8-byte aligned", 8+headerLen)
			}
			got, meta, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			assertTensorsEqual(t, got, tt.tensors)
			if !maps.Equal(meta, tt.metadata) {
				t.Errorf("metadata %v, want %v", meta, tt.metadata)
			}
		})
	}
}

// The expected files are worked out by hand from the format: u64 LE header
// length, the header padded with spaces to a multiple of 8, then the data
// as little-endian float32 (1.0 = 00 00 80 3f).
func TestSafetensorsGolden(t *testing.T) {
	tests := []struct {
		name     string
		tensors  map[string]*tensor.Tensor
		metadata map[string]string
		want     string
	}{
		{
			name: "vector and scalar",
			tensors: map[string]*tensor.Tensor{
				"b": tensor.FromData([]float32{-1}, []int{}...),
				"a": tensor.FromData([]float32{1, 2}, 2),
			},
			// 107 header bytes + 5 spaces = 112 = 0x70.
			want: "\x70\x00\x00\x00\x00\x00\x00\x00" +
				`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}     ` +
				"\x00\x00\x80\x3f" + "\x00\x00\x00\x40" + "\x00\x00\x80\xbf",
		},
		{
			name:     "metadata first",
			tensors:  map[string]*tensor.Tensor{"a": tensor.FromData([]float32{0.5}, 1)},
			metadata: map[string]string{"format": "pt"},
			// 85 header bytes + 3 spaces = 88 = 0x58.
			want: "\x58\x00\x00\x00\x00\x00\x00\x00" +
				`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   ` +
				"\x00\x00\x00\x3f",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteSafetensors(&buf, tt.tensors, tt.metadata); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]*tensor.Tensor
		want    string
	}{
		{"nil tensor", map[string]*tensor.Tensor{"x": nil}, `"x" is nil`},
		{"short data", map[string]*tensor.Tensor{"x": {Shape: []int{2, 2}, Data: make([]float32, 3)}}, "has 3 elements, shape [2 2] needs 4"},
		{"negative dim", map[string]*tensor.Tensor{"x": {Shape: []int{-1}, Data: nil}}, "negative dimension"},
		{"reserved name", map[string]*tensor.Tensor{metadataKey: tensor.New(1)}, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteSafetensors(&buf, tt.tensors, nil)
			if !errors.Is(err, ErrInvalidTensor) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidTensor containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// stFile assembles a safetensors file from a raw header and data.
func stFile(header string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestReadSafetensorsRejects(t *testing.T) {
	const one = `{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`
	four := []byte{0, 0, 0x80, 0x3f}
	eight := append(append([]byte{}, four...), four...)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"shorter than length", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"length beyond file", append(binary.LittleEndian.AppendUint64(nil, 50), "{}"...), "header length 50 beyond file size 10"},
		{"header over 100 MB", binary.LittleEndian.AppendUint64(nil, 100_000_001), "exceeds the 100000000-byte limit"},
		{"not an object", stFile(`["a"]`), "does not start with '{'"},
		{"bad json", stFile(`{"a":`), "header"},
		{"trailing data", stFile(`{} {}`), "trailing data"},
		{"unknown dtype", stFile(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}`, four...), `dtype "Q7"`},
		{"other dtype", stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, four...), `dtype "F16"`},
		{"duplicate name", stFile(`{"a":`+one+`,"a":`+one+`}`, four...), `duplicate tensor name "a"`},
		{"duplicate metadata", stFile(`{"__metadata__":{},"__metadata__":{}}`), "duplicate"},
		{"metadata not strings", stFile(`{"__metadata__":{"n":1}}`), "__metadata__"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight...), "overlaps"},
		{"gap", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight...), "gap of 4 bytes"},
		{"data not covered", stFile(`{"a":`+one+`}`, eight...), "cover 4 of the 8 data bytes"},
		{"offset past end", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, four...), "outside the 4 data bytes"},
		{"begin after end", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, four...), "outside"},
		{"shape mismatch", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four...), "does not fit its 4 bytes"},
		{"huge shape", stFile(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, four...), "does not fit"},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four...), "negative dimension"},
		{"missing shape", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four...), "no shape"},
		{"three offsets", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}`, four...), "3 data_offsets"},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, four...), "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(bytes.NewReader(tt.file), int64(len(tt.file)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}
}

// A reader whose data ends before the size it was given (a file truncated
// under us) is corrupt, not an I/O error.
func TestReadSafetensorsShortReader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, sampleTensors(1), nil); err != nil {
		t.Fatal(err)
	}
	short := buf.Bytes()[:buf.Len()-3]
	_, _, err := ReadSafetensors(bytes.NewReader(short), int64(buf.Len()))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "file ends before byte") {
		t.Fatalf("err = %v, want ErrCorrupt for a short file", err)
	}
}
