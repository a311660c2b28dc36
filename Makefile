# Cohort — build, run, test. `make help` lists the targets.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# OpenBLAS when the library links here, pure-Go gonum otherwise.
BLAS_TAG := $(shell echo 'int main(void){return 0;}' | gcc -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas)
TAGS ?= $(BLAS_TAG)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go

.PHONY: help build run data test test-go test-openblas vet fuzz bench deps clean cuda vet-cuda gpu-carry emu-test

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/cohort (OpenBLAS when installed)
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/cohort ./cmd/cohort

data: ## fetch real MNIST into ~/.cache/cohort/mnist (via the Go module proxy)
	./scripts/fetch-mnist.sh

run: data build ## the main job: 2 ranks on CPU train the MNIST MLP (global batch 128)
	bin/cohort launch --nproc-per-node 2 -- train -c configs/mnist_mlp.yaml dataset.train.batchsize_per_replica=64

deps: ## install what builds and tests need (Debian; idempotent)
	./scripts/install-deps.sh

test: vet vet-cuda test-go test-openblas ## everything CI runs (vet-cuda installs Debian's CUDA headers when missing)

vet:
	@out=$$(gofmt -l cmd dist cuda engine hooks); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags openblas ./...

test-go: data ## tests with pure-Go BLAS
	$(GO) test -count=1 ./...

test-openblas: data ## tests with OpenBLAS (needs libopenblas-dev)
	@if [ "$(BLAS_TAG)" != openblas ]; then echo "libopenblas not installed: run make deps"; exit 1; fi
	$(GO) test -count=1 -tags openblas ./engine/... ./cmd/...

fuzz: ## run every fuzz target briefly (FUZZTIME=20s)
	./scripts/fuzz.sh $${FUZZTIME:-20s}

bench: build ## CPU training throughput against PyTorch in the same run
	./scripts/bench/train-cpu.sh

# The CUDA build links against a stub libcublas (SONAME libcublas.so.13, see
# scripts/cuda/stub-cublas.sh) so the binaries run on a CUDA 13 machine. The
# test binaries carry no BLAS tag: they need nothing beyond CUDA there.
CUDA_STUB := bin/cuda-stub
CUDA_TAGS ?= cuda
CUDA_ENV := CGO_ENABLED=1 CGO_LDFLAGS="-L$(CURDIR)/$(CUDA_STUB)"

cuda: vet-cuda ## bin/cohort-cuda + bin/cuda.test, bin/gpu.test for scripts/gpu-check.sh (installs the CUDA toolkit when missing)
	./scripts/cuda/stub-cublas.sh $(CUDA_STUB)
	$(CUDA_ENV) $(GO) build -tags '$(CUDA_TAGS)' -ldflags '$(LDFLAGS)' -o bin/cohort-cuda ./cmd/cohort
	$(CUDA_ENV) $(GO) test -c -tags cuda -ldflags '-s -w' -o bin/cuda.test ./cuda
	$(CUDA_ENV) $(GO) test -c -tags cuda -ldflags '-s -w' -o bin/gpu.test ./engine/gpu
	./scripts/cuda/check-link.sh bin/cohort-cuda bin/cuda.test bin/gpu.test

gpu-carry: ## .carry/: the PyTorch GPU anchor and MNIST, for the GPU machine (carry bin/cohort-cuda bin/cuda.test bin/gpu.test .carry)
	mkdir -p .carry/anchors .carry/mnist
	cp $${COHORT_ANCHORS:-../shared/anchors}/torch_gpu_anchor.py .carry/anchors/
	./scripts/fetch-mnist.sh >/dev/null
	cp $${COHORT_DATA_DIR:-$$HOME/.cache/cohort/mnist}/*.gz .carry/mnist/

emu-test: ## cuda-tagged tests and a CLI training on a host emulation of CUDA and cuBLAS (no GPU; not a speed check)
	@[ -e /usr/include/cuda.h ] || ./scripts/cuda/install-toolkit.sh
	./scripts/cuda/emu-test.sh

vet-cuda: ## go vet the cuda-tagged packages (installs the CUDA toolkit when missing)
	@[ -e /usr/include/cuda.h ] || ./scripts/cuda/install-toolkit.sh
	@out=$$(gofmt -l cuda engine/gpu cmd); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet -tags cuda ./cuda/... ./engine/gpu/... ./cmd/...
	@if command -v nvcc >/dev/null; then ./scripts/cuda/gen-kernels.sh --check; else echo "nvcc not installed: committed kernels not re-checked"; fi

clean:
	rm -rf bin .carry
