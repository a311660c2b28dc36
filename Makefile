# Cohort — build, run, test. `make help` lists the targets.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# OpenBLAS when the library links here, pure-Go gonum otherwise.
BLAS_TAG := $(shell echo 'int main(void){return 0;}' | gcc -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas)
TAGS ?= $(BLAS_TAG)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go

.PHONY: help build run data test test-go test-openblas vet fuzz bench deps clean cuda

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

test: vet test-go test-openblas ## everything CI runs

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

cuda: ## bin/cohort-cuda (not built yet)
	@echo "the CUDA backend is not implemented yet (issue: CUDA backend); bin/cohort-cuda cannot be built" >&2; exit 1

clean:
	rm -rf bin
