package tensorboard

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Expected values computed independently with Python's crcmod ("crc-32c")
// and TFRecord's masking formula.
func TestMaskedCRCMatchesIndependentCRC32C(t *testing.T) {
	for _, tc := range []struct {
		data string
		want uint32
	}{
		{"123456789", 0xc78ab0e5},
		{"\x00\x00\x00\x00\x00\x00\x00\x00", 0x07980329},
		{"hello tensorboard", 0xd8746fa4},
	} {
		if got := maskedCRC([]byte(tc.data)); got != tc.want {
			t.Errorf("maskedCRC(%q) = %08x, want %08x", tc.data, got, tc.want)
		}
	}
}

func TestRecordFraming(t *testing.T) {
	rec := appendRecord(nil, []byte("hello tensorboard"))
	want := []byte{
		17, 0, 0, 0, 0, 0, 0, 0, // length, uint64 LE
	}
	if !bytes.Equal(rec[:8], want) || len(rec) != 8+4+17+4 {
		t.Fatalf("record % x", rec)
	}
	// The data CRC is the last 4 bytes, little endian.
	if !bytes.Equal(rec[len(rec)-4:], []byte{0xa4, 0x6f, 0x74, 0xd8}) {
		t.Fatalf("data crc % x", rec[len(rec)-4:])
	}
	r := bytes.NewReader(append(rec, appendRecord(nil, nil)...))
	for _, want := range []string{"hello tensorboard", ""} {
		got, err := readRecord(r)
		if err != nil || string(got) != want {
			t.Fatalf("readRecord = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readRecord(r); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
}

func TestReadRecordRejectsDamage(t *testing.T) {
	good := appendRecord(nil, []byte("some event bytes"))
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   error
	}{
		{"length byte", func(b []byte) []byte { b[0] ^= 1; return b }, ErrChecksum},
		{"length crc", func(b []byte) []byte { b[9] ^= 0x80; return b }, ErrChecksum},
		{"data byte", func(b []byte) []byte { b[14] ^= 4; return b }, ErrChecksum},
		{"data crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrChecksum},
		{"cut in data", func(b []byte) []byte { return b[:15] }, io.ErrUnexpectedEOF},
		{"cut in header", func(b []byte) []byte { return b[:5] }, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(bytes.Clone(good))
			if _, err := readRecord(bytes.NewReader(b)); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}
