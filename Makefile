# podguard: least privilege for every pod.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PKG      := podguard.dev/podguard/cmd/podguard/internal/versioncmd
LDFLAGS  := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT)
BIN      := bin/podguard
# make fuzz: a duration, or a count such as 200000x (a count avoids go.dev/issue/75804)
FUZZTIME ?= 30s
BENCHTIME ?= 2s

.PHONY: generate all build test unit lint bench bench-engine bench-images fuzz chaos run demo tools tools-paths image chart release clean help

all: lint build test

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/podguard (static, trimmed, version stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/podguard

generate: ## PodGuardException's deep copies and CRD, from policies/api/v1alpha1 (controller-gen); a test checks they are current
	CG=$$(hack/tools.sh controller-gen) && $$CG object paths=./policies/api/v1alpha1/... && \
	  $$CG crd:crdVersions=v1 paths=./policies/api/v1alpha1/... output:crd:dir=charts/podguard/files/crds

tools: ## build and cache etcd, kube-apiserver, kubectl and helm from their Go modules
	hack/tools.sh all

tools-paths: tools ## print where the cached kube-apiserver, etcd, kubectl and helm are, as shell exports
	@echo "export KUBEBUILDER_ASSETS=$$(hack/tools.sh assets-dir)"
	@echo "export PATH=$$(hack/tools.sh assets-dir):$$(dirname $$(hack/tools.sh helm-path)):\$$PATH   # kubectl, kube-apiserver, etcd, helm"

test: tools ## every test: unit, fixtures, differential, CLI, and integration against a real kube-apiserver
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" PODGUARD_HELM="$$(hack/tools.sh helm-path)" \
		$(GO) test -count=1 -timeout 60m ./...
	# Counted, not timed: Go 1.26's fuzz coordinator can fail a run with
	# "context deadline exceeded" when a -fuzztime duration ends (go.dev/issue/75804,
	# fixed in Go 1.27); a count has no deadline to race, and bounds the time too.
	$(GO) test -run '^$$' -fuzz '^FuzzReviewDecode$$' -fuzztime 100000x ./webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzSplitLikeKubectl$$' -fuzztime 100000x ./policies/manifest/

unit: ## fast tests that need no binaries (handlers included; cluster tests skip under -short)
	$(GO) test -short ./policies/... ./cmd/... ./webhook/...

lint: ## gofmt, go vet, go mod tidy, no build output tracked
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	hack/check-tracked.sh

chaos: tools ## the fault test in its full form (60 s per scenario, as root), writing RELIABILITY.md's fault table
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" PODGUARD_FAULT_SECONDS=60 \
		$(GO) test -count=1 -timeout 30m -run '^TestFaults$$' -v ./webhook/ -args -update-reliability

bench-engine: ## Go benchmarks of the engine beside pod-security-admission
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./policies/

bench: build tools ## every benchmark, regenerating BENCHMARKS.md and hack/bench/latency.svg (about 10 minutes)
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" $(GO) run ./hack/bench -out BENCHMARKS.md

bench-images: build tools ## image verification only (verifier and pod creates through kube-apiserver), merged into the last make bench run's BENCHMARKS.md
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" $(GO) run ./hack/bench -only images -merge -out BENCHMARKS.md

fuzz: ## run each fuzz test for FUZZTIME
	$(GO) test -run '^$$' -fuzz '^FuzzValidateMutate$$' -fuzztime $(FUZZTIME) ./policies/
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $(FUZZTIME) ./policies/manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzSplitLikeKubectl$$' -fuzztime $(FUZZTIME) ./policies/manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzReviewDecode$$' -fuzztime $(FUZZTIME) ./webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzAttestationParsing$$' -fuzztime $(FUZZTIME) ./webhook/imageverify/

# The dev cluster runs as a built binary, not under go run: on Ctrl-C go run
# exits 1 even when the program it ran stopped cleanly with 0.
# They need only the control plane (etcd, kube-apiserver, kubectl), not the
# rest of the test tools (helm, promtool, CRDs, a browser).
run: build ## the main job: a local control plane with podguard serving the default policy (Ctrl-C stops)
	$(GO) build -o bin/devcluster ./hack/devcluster
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" bin/devcluster -podguard $(BIN)

demo: build ## make run, but stop after the demo
	$(GO) build -o bin/devcluster ./hack/devcluster
	KUBEBUILDER_ASSETS="$$(hack/tools.sh assets-dir)" bin/devcluster -podguard $(BIN) -demo-only

image: ## build the image (buildah, no Docker engine needed) into dist/podguard-image.tar
	hack/image.sh

chart: tools ## lint and package the Helm chart into dist/
	"$$(hack/tools.sh helm-path)" lint --strict charts/podguard
	mkdir -p dist && "$$(hack/tools.sh helm-path)" package charts/podguard -d dist

release: ## static binaries (linux/amd64, linux/arm64, darwin/arm64), SBOMs, the chart and checksums into dist/release: make release VERSION=v1.2.3
	VERSION="$(VERSION)" hack/release/release.sh

clean:
	rm -rf bin dist
