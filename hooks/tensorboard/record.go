package tensorboard

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is read-only after init; TFRecord checksums are CRC-32C.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxRecordBytes bounds a record the reader will allocate for: scalar
// events are tiny, so a larger length means a damaged or foreign file.
const maxRecordBytes = 64 << 20

// maskedCRC is TFRecord's masked CRC-32C: masking keeps a CRC of data that
// itself embeds CRCs from being trivially predictable.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// appendRecord frames data as one TFRecord: uint64 LE length, masked CRC
// of the length bytes, data, masked CRC of the data.
func appendRecord(dst, data []byte) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(data)))
	dst = append(dst, n[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, maskedCRC(n[:]))
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, maskedCRC(data))
}

// readRecord reads one TFRecord's data, checking both CRCs. It returns
// io.EOF only at a clean end between records.
func readRecord(r io.Reader) ([]byte, error) {
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("record header: %w", err)
	}
	if got, want := binary.LittleEndian.Uint32(head[8:]), maskedCRC(head[:8]); got != want {
		return nil, fmt.Errorf("%w: length crc %08x, want %08x", ErrChecksum, got, want)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	if n > maxRecordBytes {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrMalformed, n)
	}
	buf := make([]byte, n+4)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("record of %d bytes: %w", n, err)
	}
	data := buf[:n]
	if got, want := binary.LittleEndian.Uint32(buf[n:]), maskedCRC(data); got != want {
		return nil, fmt.Errorf("%w: data crc %08x, want %08x", ErrChecksum, got, want)
	}
	return data, nil
}
