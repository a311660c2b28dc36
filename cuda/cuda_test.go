//go:build !cuda

package cuda

import (
	"errors"
	"testing"
)

func TestNotBuilt(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true in a build without the cuda tag")
	}
	if _, err := Open(0, Options{}); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Open: err = %v, want ErrNotBuilt", err)
	}
	if _, err := Devices(); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Devices: err = %v, want ErrNotBuilt", err)
	}
}
