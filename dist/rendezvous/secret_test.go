package rendezvous

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestJobSecret(t *testing.T) {
	// Computed independently: Python's hmac.new(b"tok", b"cohort-data-plane|run-7", sha256).
	want := "cad485fe79154eee147dcdc760b2309a49b85bd9bc2b728011d103fca022d233"
	if got := hex.EncodeToString(JobSecret("tok", "run-7")); got != want {
		t.Fatalf("JobSecret = %s, want %s", got, want)
	}
	base := JobSecret("tok", "run-7")
	for _, other := range [][]byte{JobSecret("tok", "run-8"), JobSecret("tok2", "run-7")} {
		if bytes.Equal(base, other) {
			t.Fatal("secrets of different runs or tokens are equal")
		}
	}
}
