package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// Any bytes either decode or fail with ErrCorrupt, never panic or
// over-allocate; whatever decodes re-encodes to an equal file's content.
func FuzzReadSafetensors(f *testing.F) {
	var valid bytes.Buffer
	if err := WriteSafetensors(&valid, sampleTensors(1), producerMetadata()); err != nil {
		f.Fatal(err)
	}
	f.Add(valid.Bytes())
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, 0, 0, 0x80, 0x3f))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[0,2],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4))
	f.Add(stFile(`{"__metadata__":{"k":"v"}}  `))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, metadata, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var again bytes.Buffer
		if err := WriteSafetensors(&again, tensors, metadata); err != nil {
			t.Fatalf("decoded tensors do not re-encode: %v", err)
		}
		tensors2, metadata2, err := ReadSafetensors(bytes.NewReader(again.Bytes()), int64(again.Len()))
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		assertTensorsEqual(t, tensors2, tensors)
		if !maps.Equal(metadata2, metadata) {
			t.Fatalf("metadata %v became %v", metadata, metadata2)
		}
	})
}

// Any commit record either decodes to something Save could have written,
// or fails with ErrCorrupt or ErrFormat.
func FuzzMeta(f *testing.F) {
	dir := f.TempDir()
	path, err := Save(dir, sampleMeta(3, 9), sampleTensors(1))
	if err != nil {
		f.Fatal(err)
	}
	record, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(record)
	f.Add([]byte(`{"format":1,"sha256":"` + string(bytes.Repeat([]byte("ab"), 32)) + `","size":8,"tensors_file":"x"}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"tensors_file":"../etc/passwd"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMeta(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrFormat", err)
			}
			return
		}
		if m.TensorsFile != filepath.Base(m.TensorsFile) || m.Format != FormatVersion || m.Size < 8 {
			t.Fatalf("accepted an unusable record: %+v", m)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if _, err := decodeMeta(again); err != nil {
			t.Fatalf("re-encoded record rejected: %v\n%s", err, again)
		}
	})
}
