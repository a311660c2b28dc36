//go:build !cuda

package cuda

import (
	"context"
	"errors"
	"testing"
)

func TestNCCLNotBuilt(t *testing.T) {
	if _, err := NCCLVersion(); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("NCCLVersion: err = %v, want ErrNotBuilt", err)
	}
	if _, err := NewNCCLID(); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("NewNCCLID: err = %v, want ErrNotBuilt", err)
	}
	var d *Device
	if _, err := d.NewNCCLComm(context.Background(), NCCLID{1}, 0, 1); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("NewNCCLComm: err = %v, want ErrNotBuilt", err)
	}
}
