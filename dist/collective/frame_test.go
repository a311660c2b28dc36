package collective

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []header{
		{typ: frameSum, step: 5, seq: 1 << 31, size: MaxChunkBytes},
		{typ: frameKeepalive, seq: 3},
		{typ: frameAbort, size: maxAbortBytes},
		{typ: frameBarrier, step: 65535},
	} {
		var b [headerBytes]byte
		h.put(&b)
		got, err := parseHeader(&b)
		if err != nil || got != h {
			t.Fatalf("%+v came back as %+v, %v", h, got, err)
		}
	}
}

func TestParseAbort(t *testing.T) {
	m := abortMsg{culprit: 2, reporter: 1, kind: kindStalled, reason: "sent no bytes"}
	got, err := parseAbort(m.append(nil), 3)
	if err != nil || got != m {
		t.Fatalf("%+v came back as %+v, %v", m, got, err)
	}
	pe := got.peerError("barrier")
	if pe.Rank != 2 || !errors.Is(pe, ErrPeerStalled) {
		t.Fatalf("peer error %v", pe)
	}
	for name, b := range map[string][]byte{
		"short":         m.append(nil)[:5],
		"culprit-range": (&abortMsg{culprit: 3, kind: kindLost}).append(nil),
		"unknown-kind":  (&abortMsg{kind: 9}).append(nil),
		"length":        append(m.append(nil), 'x'),
	} {
		if _, err := parseAbort(b, 3); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: got %v, want ErrProtocol", name, err)
		}
	}
}

// FuzzFrame feeds arbitrary bytes to the frame decoders: errors, never
// panics, and whatever parses re-encodes to the same bytes.
func FuzzFrame(f *testing.F) {
	var b [headerBytes]byte
	(&header{typ: frameMean, step: 1, seq: 9, size: 64}).put(&b)
	f.Add(b[:])
	f.Add(abortFrame(&abortMsg{culprit: 1, reporter: 0, kind: kindLost, reason: "EOF"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < headerBytes {
			return
		}
		hb := [headerBytes]byte(data)
		h, err := parseHeader(&hb)
		if err != nil {
			return
		}
		var again [headerBytes]byte
		h.put(&again)
		if again != hb {
			t.Fatalf("header %x re-encodes as %x", hb, again)
		}
		if h.typ == frameAbort {
			body := data[headerBytes:]
			if m, err := parseAbort(body, 4); err == nil && !bytes.Equal(m.append(nil), body) {
				t.Fatalf("abort %x re-encodes differently", body)
			}
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to the handshake decoders.
func FuzzHandshake(f *testing.F) {
	h := hello{version: protoVersion, chunkBytes: 4096, from: 1, to: 2, jobID: testJob}
	f.Add(h.append(nil))
	f.Add(appendReject(nil, "job id mismatch"))
	f.Add(append([]byte{tagChallenge}, make([]byte, nonceBytes+macBytes)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, err := readHello(bytes.NewReader(data)); err == nil {
			if enc := got.append(nil); !bytes.Equal(enc, data[:len(enc)]) {
				t.Fatalf("hello %x re-encodes as %x", data[:len(enc)], enc)
			}
		}
		var body [nonceBytes + macBytes]byte
		err := readTagged(bytes.NewReader(data), tagChallenge, body[:])
		var rej *rejectError
		if errors.As(err, &rej) && len(rej.reason) > maxReason {
			t.Fatalf("reject reason of %d bytes accepted", len(rej.reason))
		}
	})
}
