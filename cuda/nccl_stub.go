//go:build !cuda

package cuda

import "context"

// NCCLVersion fails with ErrNotBuilt: NCCL is only loaded by the cuda build.
func NCCLVersion() (string, error) { return "", ErrNotBuilt }

// NewNCCLID fails with ErrNotBuilt.
func NewNCCLID() (NCCLID, error) { return NCCLID{}, ErrNotBuilt }

// NCCLComm is an NCCL communicator; without the cuda tag there is none.
type NCCLComm struct{}

// NewNCCLComm fails with ErrNotBuilt.
func (*Device) NewNCCLComm(ctx context.Context, id NCCLID, rank, size int) (*NCCLComm, error) {
	return nil, ErrNotBuilt
}

// Close fails with ErrNotBuilt.
func (*NCCLComm) Close() error { return ErrNotBuilt }

// Abort fails with ErrNotBuilt.
func (*NCCLComm) Abort() error { return ErrNotBuilt }

// AsyncError fails with ErrNotBuilt.
func (*NCCLComm) AsyncError() error { return ErrNotBuilt }

// Rank is 0.
func (*NCCLComm) Rank() int { return 0 }

// Size is 0.
func (*NCCLComm) Size() int { return 0 }
