package cuda

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNCCLID(t *testing.T) {
	for _, n := range []int{0, 1, 127, 129, 256} {
		if _, err := ParseNCCLID(make([]byte, n)); !errors.Is(err, ErrArgument) {
			t.Errorf("ParseNCCLID(%d bytes): err = %v, want ErrArgument", n, err)
		}
	}
	b := make([]byte, 128)
	for i := range b {
		b[i] = byte(3*i + 1)
	}
	id, err := ParseNCCLID(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(id[:]) != string(b) || id.IsZero() {
		t.Fatalf("ParseNCCLID changed the bytes or reads as zero: %x", id)
	}
	b[0]++ // the id is a copy, not a view of the message
	if id[0] != 1 {
		t.Errorf("ParseNCCLID kept a reference to its input")
	}
	if !(NCCLID{}).IsZero() {
		t.Error("zero NCCLID: IsZero() = false")
	}
}

func TestNCCLVersionString(t *testing.T) {
	for code, want := range map[int]string{
		2708:  "2.7.8", // the pre-2.9 encoding
		2804:  "2.8.4",
		20903: "2.9.3",
		21003: "2.10.3",
		22809: "2.28.9",
		30001: "3.0.1",
	} {
		if got := ncclVersionString(code); got != want {
			t.Errorf("ncclVersionString(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNoNCCLError(t *testing.T) {
	err := noNCCL([]dlAttempt{
		{"libnccl.so.2", "libnccl.so.2: cannot open shared object file: No such file or directory"},
		{"libnccl.so", "libnccl.so: cannot open shared object file"},
	})
	if !errors.Is(err, ErrNoNCCL) {
		t.Fatalf("errors.Is(%v, ErrNoNCCL) = false", err)
	}
	msg := err.Error()
	for _, want := range []string{`dlopen("libnccl.so.2"): libnccl.so.2: cannot open`, `dlopen("libnccl.so")`, "LD_LIBRARY_PATH", "--comm tcp"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestNCCLError(t *testing.T) {
	var err error = &NCCLError{Op: "ncclAllReduce", Result: ncclRemoteError, Text: "remote process exited or there was a network error"}
	if !errors.Is(err, ErrNCCL) {
		t.Errorf("errors.Is(%v, ErrNCCL) = false", err)
	}
	var ne *NCCLError
	if !errors.As(err, &ne) || !ne.Remote() {
		t.Errorf("errors.As = %v, Remote() = %v; want a remote *NCCLError", ne, ne != nil && ne.Remote())
	}
	if msg := err.Error(); !strings.Contains(msg, "ncclAllReduce") || !strings.Contains(msg, "network error") || !strings.Contains(msg, "6") {
		t.Errorf("message %q lacks the call, NCCL's text or the code", msg)
	}
	for r, remote := range map[int]bool{1: false, ncclSystemError: true, 3: false, 4: false, 5: false, ncclRemoteError: true} {
		if got := (&NCCLError{Result: r}).Remote(); got != remote {
			t.Errorf("NCCLError{Result: %d}.Remote() = %v, want %v", r, got, remote)
		}
	}
}
