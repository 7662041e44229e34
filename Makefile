# Baton. Run `make help` for the targets.
SHELL := bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Tests start one control plane per package: a generous timeout covers the
# first run on a fresh machine, which builds it.
TEST_TIMEOUT ?= 30m

.PHONY: help demo demo-down build test testenv vet bench clean clean-cache

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

demo: ## run the demo: a release from commit to prod and back, on the local cluster and forge (Ctrl-C or make demo-down stops it)
	@$(GO) run ./internal/demo/cmd/demo up

demo-down: ## stop the demo started by make demo (only what it started)
	@$(GO) run ./internal/demo/cmd/demo down

build: ## build the baton binary into bin/
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/baton ./cmd/baton

testenv: ## build the test control plane into the cache (once per machine; prints progress)
	@$(GO) run ./internal/testenv/cmd/testenv build

vet:
	$(GO) vet ./...

test: vet testenv ## go vet, then every test with -race against a real control plane
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

bench: testenv ## benchmarks (figures for speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -timeout $(TEST_TIMEOUT) ./...

clean: ## remove build output
	rm -rf bin/

clean-cache: ## remove the built control plane and tools from the user cache
	$(GO) run ./internal/testenv/cmd/testenv clean
