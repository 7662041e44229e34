# Baton. Run `make help` for the targets.
SHELL := bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
# The image: its name (manifests/kustomization.yaml's images: newName), the
# platforms of its index, and the Go release its binary is compiled with —
# the same commit gives the same digest only with the same toolchain (the go
# command fetches that release from the module proxy when it is not the
# local one). IMAGE_LICENSES goes in the org.opencontainers.image.licenses
# label: an SPDX expression, NOASSERTION while the repository has no licence.
IMAGE_NAME ?= ghcr.io/baton-gitops/baton
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_TOOLCHAIN ?= go1.26.8
IMAGE_LICENSES ?= NOASSERTION
# Tests start one control plane per package: a generous timeout covers the
# first run on a fresh machine, which builds it.
TEST_TIMEOUT ?= 30m

.PHONY: help demo demo-down build image image-push manifests-version test testenv vet bench soak clean clean-cache

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

demo: ## run the demo: a release from commit to prod and back, on the local cluster and forge (Ctrl-C or make demo-down stops it)
	@$(GO) run ./internal/demo/cmd/demo up

demo-down: ## stop the demo started by make demo (only what it started)
	@$(GO) run ./internal/demo/cmd/demo down

build: ## build the baton binary into bin/
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/baton ./cmd/baton

image: ## build the agent's OCI image (linux/amd64 + linux/arm64 index) into bin/image without Docker: OCI layout, docker-load tarballs, SPDX SBOMs
	@$(GO) run ./internal/image/cmd/image build -out bin/image -version $(VERSION) -image $(IMAGE_NAME) \
		-platforms $(IMAGE_PLATFORMS) -toolchain $(IMAGE_TOOLCHAIN) -licenses $(IMAGE_LICENSES)

image-push: image ## push the image to IMAGE=registry/name:tag with your registry login (~/.docker/config.json)
	@test -n "$(IMAGE)" || { echo "make image-push: set IMAGE=registry/name:tag" >&2; exit 2; }
	@$(GO) run ./internal/image/cmd/image push -layout bin/image/oci -image $(IMAGE)

manifests-version: ## set manifests/' image tag to VERSION (run by a release before tagging: make manifests-version VERSION=v1.2.3)
	@$(GO) run ./internal/image/cmd/image manifests -kustomization manifests/kustomization.yaml -image $(IMAGE_NAME) -version $(VERSION)

# -race only so that this small command reuses the race-built client-go of
# vet and the tests rather than compiling it once more without the detector.
testenv: ## build the test control plane, forge and Prometheus into the cache (once per machine; prints progress)
	@$(GO) run -race ./internal/testenv/cmd/testenv build

# -race here builds the dependencies the way the tests do, so the tests reuse
# vet's build instead of compiling client-go, kustomize and go-git a second
# time (minutes on a fresh machine).
vet: ## go vet every package
	$(GO) vet -race ./...

# -vet=off: the vet target has just run every check on every package; go
# test's own vet pass would type-check all the dependencies again.
test: vet testenv ## go vet, then every test with -race against a real control plane
	$(GO) test -race -vet=off -count=1 -timeout $(TEST_TIMEOUT) ./...

# The fault-injection suite for long: SOAK_ITERATIONS releases through the
# pipeline, one fault each (make test runs a few). BATON_FAULT_SEED=<seed>
# replays a run; the seed is printed first.
SOAK_ITERATIONS ?= 200
soak: testenv ## the fault-injection suite, long: 200 releases under faults, with the invariants checked after each
	BATON_FAULT_ITERATIONS=$(SOAK_ITERATIONS) $(GO) test -race -count=1 -timeout 6h -run '^TestFaults$$' -v ./internal/faults/

bench: testenv ## benchmarks (figures for speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -timeout $(TEST_TIMEOUT) ./...

clean: ## remove build output
	rm -rf bin/

clean-cache: ## remove the built control plane and tools from the user cache
	$(GO) run ./internal/testenv/cmd/testenv clean
