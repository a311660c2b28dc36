//go:build cuda

package cuda

// NCCL is loaded at run time with dlopen rather than linked: a cuda binary
// must start, and train with --comm tcp, on a machine without NCCL, and no
// NCCL headers are needed to build it. The few declarations used are
// written out below from nccl.h's public ABI: every enum is int-sized, a
// communicator is an opaque pointer and ncclUniqueId is 128 opaque bytes.
// Device pointers and streams cross as integers and void pointers and are
// cast in C, as in cublas.go.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { char internal[128]; } cohort_nccl_id;

// One pointer per NCCL entry point Cohort calls.
typedef struct {
	int (*get_version)(int*);
	int (*get_unique_id)(cohort_nccl_id*);
	int (*comm_init_rank)(void**, int, cohort_nccl_id, int);
	int (*all_reduce)(const void*, void*, size_t, int, int, void*, void*);
	int (*broadcast)(const void*, void*, size_t, int, int, void*, void*);
	int (*comm_destroy)(void*);
	int (*comm_abort)(void*);
	int (*comm_get_async_error)(void*, int*);
	const char* (*get_error_string)(int);
} cohort_nccl;

// dlerror's text belongs to the calling thread, so it is copied in the
// same C call as the dlopen it explains.
static void* cohort_dlopen(const char* name, char* msg, size_t n) {
	void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(msg, n, "%s", e != NULL ? e : "unknown error");
	}
	return h;
}

#define COHORT_BIND(field, sym) \
	if ((*(void**)&t->field = dlsym(h, sym)) == NULL) return sym;

// cohort_nccl_bind fills t from library h and returns NULL, or the name
// of the first symbol h lacks.
static const char* cohort_nccl_bind(void* h, cohort_nccl* t) {
	COHORT_BIND(get_version, "ncclGetVersion")
	COHORT_BIND(get_unique_id, "ncclGetUniqueId")
	COHORT_BIND(comm_init_rank, "ncclCommInitRank")
	COHORT_BIND(all_reduce, "ncclAllReduce")
	COHORT_BIND(broadcast, "ncclBroadcast")
	COHORT_BIND(comm_destroy, "ncclCommDestroy")
	COHORT_BIND(comm_abort, "ncclCommAbort")
	COHORT_BIND(comm_get_async_error, "ncclCommGetAsyncError")
	COHORT_BIND(get_error_string, "ncclGetErrorString")
	return NULL;
}

static int cohort_nccl_get_version(const cohort_nccl* t, int* v) { return t->get_version(v); }

static int cohort_nccl_unique_id(const cohort_nccl* t, cohort_nccl_id* id) { return t->get_unique_id(id); }

static int cohort_nccl_init(const cohort_nccl* t, void** comm, int size, const cohort_nccl_id* id, int rank) {
	return t->comm_init_rank(comm, size, *id, rank);
}

// In place: NCCL reduces when the send and receive buffers are the same.
static int cohort_nccl_all_reduce(const cohort_nccl* t, uintptr_t buf, size_t n, int type, int op,
                                  void* comm, void* stream) {
	return t->all_reduce((const void*)buf, (void*)buf, n, type, op, comm, stream);
}

static int cohort_nccl_broadcast(const cohort_nccl* t, uintptr_t buf, size_t n, int type, int root,
                                 void* comm, void* stream) {
	return t->broadcast((const void*)buf, (void*)buf, n, type, root, comm, stream);
}

static int cohort_nccl_destroy(const cohort_nccl* t, void* comm) { return t->comm_destroy(comm); }

static int cohort_nccl_abort(const cohort_nccl* t, void* comm) { return t->comm_abort(comm); }

static int cohort_nccl_async_error(const cohort_nccl* t, void* comm, int* state) {
	return t->comm_get_async_error(comm, state);
}

static const char* cohort_nccl_error_string(const cohort_nccl* t, int r) { return t->get_error_string(r); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// NCCL enum values (ncclDataType_t, ncclRedOp_t, ncclResult_t), as
// nccl.h defines them; they are part of its stable ABI.
const (
	ncclFloat32    = 7
	ncclSum        = 0
	ncclAvg        = 4
	ncclSuccess    = 0
	ncclInProgress = 7
)

// ncclLibraries are the names dlopen is given, in order: the versioned
// name every NCCL 2 install has, then the development symlink.
func ncclLibraries() []string { return []string{"libnccl.so.2", "libnccl.so"} }

// ncclLib is the loaded library's entry points.
type ncclLib struct {
	fn      C.cohort_nccl
	version int // NCCL_VERSION_CODE
}

// loadNCCL loads the library once per process; it is never unloaded, since
// communicators may live until exit.
var loadNCCL = sync.OnceValues(openNCCL)

func openNCCL() (*ncclLib, error) {
	var msg [512]C.char
	var tried []dlAttempt
	for _, name := range ncclLibraries() {
		cname := C.CString(name)
		h := C.cohort_dlopen(cname, &msg[0], C.size_t(len(msg)))
		C.free(unsafe.Pointer(cname))
		if h == nil {
			tried = append(tried, dlAttempt{name: name, err: C.GoString(&msg[0])})
			continue
		}
		l := &ncclLib{}
		if missing := C.cohort_nccl_bind(h, &l.fn); missing != nil {
			return nil, fmt.Errorf("%w: %s has no %s: it is not NCCL 2.4 or newer", ErrNoNCCL, name, C.GoString(missing))
		}
		var v C.int
		if err := l.check("ncclGetVersion", C.cohort_nccl_get_version(&l.fn, &v)); err != nil {
			return nil, err
		}
		l.version = int(v)
		return l, nil
	}
	return nil, noNCCL(tried)
}

// check turns an ncclResult_t into an error.
func (l *ncclLib) check(op string, r C.int) error {
	if r == ncclSuccess {
		return nil
	}
	return &NCCLError{Op: op, Result: int(r), Text: C.GoString(C.cohort_nccl_error_string(&l.fn, r))}
}

// NCCLVersion loads NCCL and returns its version, "2.28.9" say. The error
// wraps ErrNoNCCL when the library is missing.
func NCCLVersion() (string, error) {
	l, err := loadNCCL()
	if err != nil {
		return "", err
	}
	return ncclVersionString(l.version), nil
}

// NewNCCLID makes the unique id of a new communicator. Only rank 0 calls
// it: NCCL starts a bootstrap listener in this process that the other
// ranks reach through the id, so it must stay up until every rank has
// joined. It needs no device.
func NewNCCLID() (NCCLID, error) {
	var id NCCLID
	l, err := loadNCCL()
	if err != nil {
		return id, err
	}
	if err := l.check("ncclGetUniqueId", C.cohort_nccl_unique_id(&l.fn, (*C.cohort_nccl_id)(unsafe.Pointer(&id)))); err != nil {
		return NCCLID{}, err
	}
	return id, nil
}

// The methods below are the bare calls; NCCLComm (nccl_comm.go) owns the
// rules for when they may be made. A communicator crosses as the opaque
// ncclComm_t pointer NCCL returned.

// initRank is ncclCommInitRank on the calling thread's current device; it
// blocks until all size ranks have joined.
func (l *ncclLib) initRank(id *NCCLID, rank, size int) (unsafe.Pointer, error) {
	var comm unsafe.Pointer
	r := C.cohort_nccl_init(&l.fn, &comm, C.int(size), (*C.cohort_nccl_id)(unsafe.Pointer(id)), C.int(rank))
	return comm, l.check("ncclCommInitRank", r)
}

// allReduce enqueues an in-place float32 all-reduce of n elements at p.
func (l *ncclLib) allReduce(comm unsafe.Pointer, p cu.DevicePtr, n int, op int, s cu.Stream) error {
	return l.check("ncclAllReduce", C.cohort_nccl_all_reduce(&l.fn, C.uintptr_t(p), C.size_t(n),
		ncclFloat32, C.int(op), comm, unsafe.Pointer(s.C())))
}

// broadcast enqueues an in-place float32 broadcast of n elements at p from root.
func (l *ncclLib) broadcast(comm unsafe.Pointer, p cu.DevicePtr, n, root int, s cu.Stream) error {
	return l.check("ncclBroadcast", C.cohort_nccl_broadcast(&l.fn, C.uintptr_t(p), C.size_t(n),
		ncclFloat32, C.int(root), comm, unsafe.Pointer(s.C())))
}

func (l *ncclLib) destroy(comm unsafe.Pointer) error {
	return l.check("ncclCommDestroy", C.cohort_nccl_destroy(&l.fn, comm))
}

func (l *ncclLib) abort(comm unsafe.Pointer) error {
	return l.check("ncclCommAbort", C.cohort_nccl_abort(&l.fn, comm))
}

// asyncError is the communicator's asynchronous state: nil while healthy
// (ncclInProgress counts as healthy: an operation is still being set up).
func (l *ncclLib) asyncError(comm unsafe.Pointer) error {
	var state C.int
	if err := l.check("ncclCommGetAsyncError", C.cohort_nccl_async_error(&l.fn, comm, &state)); err != nil {
		return err
	}
	if state == ncclInProgress {
		return nil
	}
	return l.check("asynchronous error", state)
}
