# shadowgate — `make help` lists the targets.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 10s
BENCH     ?= .
BENCHCOUNT ?= 5
ENVTEST   ?= $(BIN)/envtest
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/shadowgate/shadowgate/cmd/shadowgate/cli.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/shadowgate (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/shadowgate ./cmd/shadowgate

.PHONY: test
test: lint fuzz-seeds envtest ## Run every test: lint, unit and integration tests with -race, brief fuzzing
	KUBEBUILDER_ASSETS=$(abspath $(ENVTEST)) $(GO) test -race -count=1 $(PKGS)

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for the envtest suites into bin/envtest (from the Go module proxy; cached)
	deploy/envtest/build.sh $(ENVTEST)

.PHONY: generate
generate: ## Regenerate the deepcopy code, the NamespaceRollout CRD and the controller's RBAC (controller-gen)
	$(GO) tool controller-gen object paths=./rollout/api/...
	$(GO) tool controller-gen crd paths=./rollout/api/... output:crd:dir=deploy/crds
	$(GO) tool controller-gen rbac:roleName=shadowgate-controller paths=./rollout/... output:rbac:dir=deploy/rbac

.PHONY: fuzz-seeds
fuzz-seeds: ## Fuzz the flow parser and the manifest loader briefly (FUZZTIME each)
	$(GO) test -run='^$$' -fuzz='^FuzzParseLine$$' -fuzztime=$(FUZZTIME) ./flows
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) ./evaluator/cluster

.PHONY: fuzz
fuzz: ## Fuzz for longer (FUZZTIME=5m make fuzz)
	$(MAKE) fuzz-seeds FUZZTIME=$(if $(filter 10s,$(FUZZTIME)),2m,$(FUZZTIME))

.PHONY: bench
bench: ## Run the Go benchmarks BENCHCOUNT times each, for benchstat (BENCH=regexp to select; see BENCHMARKS.md)
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem -count=$(BENCHCOUNT) -timeout=60m $(PKGS)

.PHONY: lint
lint: ## go vet and a gofmt check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: demo
demo: ## Run simulate on the built-in demo shop
	$(GO) run ./cmd/shadowgate simulate || test $$? -eq 3

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
