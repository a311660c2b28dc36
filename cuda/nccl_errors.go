package cuda

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNoNCCL is returned when the NCCL library cannot be loaded; the
	// wrapping error says which names were tried and why each failed.
	ErrNoNCCL = errors.New("cuda: NCCL library not available")
	// ErrNCCL wraps a failed NCCL call; errors.As gives the *NCCLError.
	ErrNCCL = errors.New("cuda: NCCL call failed")
	// ErrCommClosed is returned by an NCCLComm used after Close or Abort.
	ErrCommClosed = errors.New("cuda: NCCL communicator closed or aborted")
)

// NCCL result codes (ncclResult_t in nccl.h) that callers classify.
const (
	ncclSystemError = 2
	ncclRemoteError = 6
)

// NCCLError is a failed NCCL call: the function, its ncclResult_t and
// NCCL's text for it (ncclGetErrorString). Run with NCCL_DEBUG=WARN for
// NCCL's own account of the cause.
type NCCLError struct {
	Op     string
	Result int
	Text   string
}

func (e *NCCLError) Error() string {
	return fmt.Sprintf("%v: %s: %s (ncclResult_t %d)", ErrNCCL, e.Op, e.Text, e.Result)
}

// Unwrap makes errors.Is(err, ErrNCCL) hold.
func (e *NCCLError) Unwrap() error { return ErrNCCL }

// Remote reports whether NCCL blames the network or another rank
// (ncclSystemError, ncclRemoteError) rather than this process: the case a
// trainer reports as a lost peer.
func (e *NCCLError) Remote() bool {
	return e.Result == ncclSystemError || e.Result == ncclRemoteError
}

// dlAttempt is one library name dlopen was given and what it answered.
type dlAttempt struct{ name, err string }

// noNCCL explains a failed load: every name tried, with dlopen's reason,
// and the two ways out.
func noNCCL(tried []dlAttempt) error {
	parts := make([]string, len(tried))
	for i, a := range tried {
		parts[i] = fmt.Sprintf("dlopen(%q): %s", a.name, a.err)
	}
	return fmt.Errorf("%w: %s; install NCCL 2.x (Debian/Ubuntu package libnccl2, or NVIDIA's NCCL release) "+
		"and put the directory of libnccl.so.2 on LD_LIBRARY_PATH, or use --comm tcp", ErrNoNCCL, strings.Join(parts, "; "))
}
