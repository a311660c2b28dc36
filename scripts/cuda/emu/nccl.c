// A stand-in for libnccl.so.2 in scripts/cuda/emu-test.sh, where "device"
// memory is host memory: the entry points package cuda loads, with
// ranks in any processes of this machine meeting in a POSIX shared-memory
// segment named by the unique id. Collectives run at once on the calling
// thread (the stream is ignored): each rank copies its part into its slot,
// all wait at a barrier, each sums the slots in rank order (so every rank
// gets the same bits), and all wait again before the slots are reused.
// Only float32 sum, average and broadcast are there; a peer that never
// comes makes a call fail after waitLimit seconds, and ranks that call
// different collectives (kind, count or root) at the same point fail
// with invalidArgument, where real NCCL would hang or mix data. It checks
// plumbing (ids, ranks, counts, order of collectives), not NCCL.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { ok = 0, unhandledCudaError = 1, systemError = 2, invalidArgument = 4, inProgress = 7 };
enum { ncclFloat32 = 7, ncclSum = 0, ncclAvg = 4 };

typedef struct { char internal[128]; } ncclUniqueId;

#define MAGIC 0x4e43434c
#define CHUNK (1 << 20) // floats per rank and round
static const int waitLimit = 120;

struct header {
	_Atomic int magic;
	int nranks;
	_Atomic int refs;
	_Atomic unsigned arrived, generation;
};

// call is what a rank is doing, compared across ranks at each collective.
struct call {
	long count;
	int kind; // the op, or 100 + root for a broadcast
	char pad[52];
};

struct comm {
	struct header* h;
	struct call* calls; // one per rank
	float* slots;       // nranks × CHUNK
	size_t bytes;
	int rank, nranks;
	_Atomic int aborted; // set by ncclCommAbort: waits give up
	char name[128];
};

// comms holds every communicator made and not destroyed, so that one
// still waiting for its peers, or aborted, at exit is not a leak to
// LeakSanitizer.
static struct comm* comms[256];
static _Atomic int ncomms;

static struct comm* newComm(void) {
	struct comm* c = calloc(1, sizeof *c);
	int i = atomic_fetch_add(&ncomms, 1);
	if (i < 256) {
		comms[i] = c;
	}
	return c;
}

static void freeComm(struct comm* c) {
	for (int i = 0; i < 256; i++) {
		if (comms[i] == c) {
			comms[i] = NULL;
		}
	}
	free(c);
}

static size_t segmentBytes(int nranks) {
	return 64 + (size_t)nranks * sizeof(struct call) + (size_t)nranks * CHUNK * sizeof(float);
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

// pause spins briefly, then sleeps, so waiting ranks leave the CPU to the
// ranks still computing (the emulation runs on few cores).
static void pause_(int* spins) {
	if (++*spins < 100) {
		sched_yield();
		return;
	}
	struct timespec t = {0, 50000};
	nanosleep(&t, NULL);
}

static int barrier(struct comm* c) {
	struct header* h = c->h;
	unsigned gen = atomic_load(&h->generation);
	if (atomic_fetch_add(&h->arrived, 1) == (unsigned)c->nranks - 1) {
		atomic_store(&h->arrived, 0);
		atomic_fetch_add(&h->generation, 1);
		return ok;
	}
	double start = now();
	for (int spins = 0; atomic_load(&h->generation) == gen; pause_(&spins)) {
		if (atomic_load(&c->aborted)) {
			return systemError;
		}
		if (now() - start > waitLimit) {
			fprintf(stderr, "nccl emulation: rank %d of %d waited %d s for its peers\n", c->rank, c->nranks, waitLimit);
			return systemError;
		}
	}
	return ok;
}

int ncclGetVersion(int* v) {
	*v = 22809; // 2.28.9
	return ok;
}

int ncclGetUniqueId(ncclUniqueId* id) {
	static _Atomic int counter;
	memset(id, 0, sizeof *id);
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	snprintf(id->internal, sizeof id->internal, "/cohort-emu-nccl-%d-%ld-%ld-%d", (int)getpid(), (long)t.tv_sec,
	         t.tv_nsec, atomic_fetch_add(&counter, 1));
	return ok;
}

// ncclCommInitRank joins (creating, if first) the segment and returns when
// all nranks have joined.
int ncclCommInitRank(void** out, int nranks, ncclUniqueId id, int rank) {
	if (nranks < 1 || rank < 0 || rank >= nranks || id.internal[0] != '/') {
		return invalidArgument;
	}
	struct comm* c = newComm();
	c->rank = rank;
	c->nranks = nranks;
	c->bytes = segmentBytes(nranks);
	memcpy(c->name, id.internal, sizeof c->name - 1);
	int fd = shm_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600);
	int creator = fd >= 0;
	if (creator && ftruncate(fd, (off_t)c->bytes) != 0) {
		close(fd);
		shm_unlink(c->name);
		freeComm(c);
		return systemError;
	}
	double start = now();
	for (int spins = 0; fd < 0; pause_(&spins)) {
		fd = shm_open(c->name, O_RDWR, 0600);
		if (now() - start > waitLimit) {
			freeComm(c);
			return systemError;
		}
	}
	struct stat st;
	for (int spins = 0; fstat(fd, &st) == 0 && (size_t)st.st_size < c->bytes; pause_(&spins)) {
	}
	void* p = mmap(NULL, c->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		freeComm(c);
		return systemError;
	}
	c->h = p;
	c->calls = (struct call*)((char*)p + 64);
	c->slots = (float*)(c->calls + nranks);
	if (creator) {
		c->h->nranks = nranks;
		atomic_store(&c->h->magic, MAGIC);
	}
	for (int spins = 0; atomic_load(&c->h->magic) != MAGIC; pause_(&spins)) {
	}
	if (c->h->nranks != nranks) {
		munmap(p, c->bytes);
		freeComm(c);
		return invalidArgument;
	}
	atomic_fetch_add(&c->h->refs, 1);
	int r = barrier(c);
	if (r != ok) {
		atomic_fetch_sub(&c->h->refs, 1);
		munmap(p, c->bytes);
		freeComm(c);
		return r;
	}
	*out = c;
	return ok;
}

// agree publishes this rank's call and checks that every rank makes the
// same one; all ranks see the same answer.
static int agree(struct comm* c, long count, int kind) {
	c->calls[c->rank].count = count;
	c->calls[c->rank].kind = kind;
	int r = barrier(c);
	if (r != ok) {
		return r;
	}
	int same = 1;
	for (int k = 0; k < c->nranks; k++) {
		same &= c->calls[k].count == count && c->calls[k].kind == kind;
	}
	if ((r = barrier(c)) != ok) { // nobody overwrites its call before all have compared
		return r;
	}
	if (!same) {
		fprintf(stderr, "nccl emulation: rank %d called collective %d of %ld floats while another rank called another\n",
		        c->rank, kind, count);
		return invalidArgument;
	}
	return ok;
}

int ncclAllReduce(const void* send, void* recv, size_t count, int type, int op, void* comm, void* stream) {
	(void)stream;
	struct comm* c = comm;
	if (type != ncclFloat32 || (op != ncclSum && op != ncclAvg)) {
		return invalidArgument;
	}
	const float* in = send;
	float* out = recv;
	int r = agree(c, (long)count, op);
	if (r != ok) {
		return r;
	}
	for (size_t off = 0; off < count; off += CHUNK) {
		size_t n = count - off < CHUNK ? count - off : CHUNK;
		memcpy(c->slots + (size_t)c->rank * CHUNK, in + off, n * sizeof(float));
		if ((r = barrier(c)) != ok) {
			return r;
		}
		for (size_t i = 0; i < n; i++) {
			float s = c->slots[i];
			for (int k = 1; k < c->nranks; k++) {
				s += c->slots[(size_t)k * CHUNK + i];
			}
			out[off + i] = op == ncclAvg ? s / c->nranks : s;
		}
		if ((r = barrier(c)) != ok) {
			return r;
		}
	}
	return ok;
}

int ncclBroadcast(const void* send, void* recv, size_t count, int type, int root, void* comm, void* stream) {
	(void)stream;
	struct comm* c = comm;
	if (type != ncclFloat32 || root < 0 || root >= c->nranks) {
		return invalidArgument;
	}
	int r = agree(c, (long)count, 100 + root);
	if (r != ok) {
		return r;
	}
	for (size_t off = 0; off < count; off += CHUNK) {
		size_t n = count - off < CHUNK ? count - off : CHUNK;
		if (c->rank == root) {
			memcpy(c->slots, (const float*)send + off, n * sizeof(float));
		}
		if ((r = barrier(c)) != ok) {
			return r;
		}
		if (c->rank != root) {
			memcpy((float*)recv + off, c->slots, n * sizeof(float));
		}
		if ((r = barrier(c)) != ok) {
			return r;
		}
	}
	return ok;
}

static int leave(struct comm* c) {
	if (atomic_fetch_sub(&c->h->refs, 1) == 1) {
		shm_unlink(c->name);
	}
	munmap(c->h, c->bytes);
	freeComm(c);
	return ok;
}

int ncclCommDestroy(void* comm) { return leave(comm); }

// ncclCommAbort makes the rank's waits give up. It keeps the segment
// mapped (a thread may still be inside a collective), so the emulation
// leaks it; the process ends soon after an abort anyway.
int ncclCommAbort(void* comm) {
	struct comm* c = comm;
	atomic_store(&c->aborted, 1);
	return ok;
}

int ncclCommGetAsyncError(void* comm, int* state) {
	(void)comm;
	*state = ok;
	return ok;
}

const char* ncclGetErrorString(int r) {
	switch (r) {
	case invalidArgument:
		return "invalid argument (nccl emulation)";
	case systemError:
		return "system error: a peer did not come (nccl emulation)";
	}
	return "error (nccl emulation)";
}
