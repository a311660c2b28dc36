package cuda

import "fmt"

// NCCLID is the 128-byte token (ncclUniqueId) that names one NCCL
// communicator. Rank 0 makes it with NewNCCLID and every other rank must
// receive the same bytes (through the rendezvous) before NewNCCLComm. It
// holds rank 0's bootstrap address, so it is only good for one job.
type NCCLID [128]byte

// ParseNCCLID checks that b is a whole NCCLID, as shipped by another rank,
// and copies it.
func ParseNCCLID(b []byte) (NCCLID, error) {
	var id NCCLID
	if len(b) != len(id) {
		return id, fmt.Errorf("%w: NCCL unique id of %d bytes, want %d", ErrArgument, len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

// IsZero reports whether id is all zero, which no NCCL id is: a rank that
// has not received rank 0's id yet holds the zero NCCLID.
func (id NCCLID) IsZero() bool { return id == NCCLID{} }
