# shadowgate — `make help` lists the targets.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 10s
BENCH     ?= .
BENCHCOUNT ?= 5
ENVTEST   ?= $(BIN)/envtest
HELM      ?= $(BIN)/helm
HELM_VERSION ?= v3.22.0
CHART     := deploy/chart/shadowgate
# The Kubernetes version helm renders and lints for (the envtest control plane's): a
# helm built from source otherwise assumes v1.20, which the chart's kubeVersion refuses.
KUBE_VERSION ?= 1.37.2
IMAGE     ?= ghcr.io/shadowgate/shadowgate:$(VERSION)
CONTAINER_TOOL ?= docker
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/shadowgate/shadowgate/cmd/shadowgate/cli.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/shadowgate (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/shadowgate ./cmd/shadowgate

.PHONY: test
test: lint fuzz-seeds envtest helm verify-manifests ## Run every test: lint, unit and integration tests with -race, brief fuzzing, manifest drift
	KUBEBUILDER_ASSETS=$(abspath $(ENVTEST)) HELM=$(abspath $(HELM)) $(GO) test -race -count=1 $(PKGS)

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for the envtest suites into bin/envtest (from the Go module proxy; cached)
	deploy/envtest/build.sh $(ENVTEST)

.PHONY: generate
generate: ## Regenerate the deepcopy code, the NamespaceRollout CRD and the controller's RBAC (controller-gen)
	$(GO) tool controller-gen object paths=./rollout/api/...
	$(GO) tool controller-gen crd paths=./rollout/api/... output:crd:dir=deploy/crds
	$(GO) tool controller-gen rbac:roleName=shadowgate-controller paths=./rollout/... output:rbac:dir=deploy/rbac

.PHONY: helm
helm: ## Build helm (HELM_VERSION) into bin/helm (from the Go module proxy; rebuilt only when the version changes)
	@# A helm built by go install reports only its minor version; its module version is exact.
	@if [ "$$($(GO) version -m $(HELM) 2>/dev/null | awk '$$1 == "mod" {print $$3}')" != "$(HELM_VERSION)" ]; then \
		echo "building helm $(HELM_VERSION)..."; \
		GOBIN=$(abspath $(BIN)) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
	fi

.PHONY: chart-sync
chart-sync: ## Copy the CRDs, the generated RBAC rules and the alert rules into the Helm chart
	rm -f $(CHART)/crds/*.yaml
	mkdir -p $(CHART)/crds $(CHART)/files/rbac
	cp deploy/crds/*.yaml $(CHART)/crds/
	cp deploy/rbac/role.yaml $(CHART)/files/rbac/role.yaml
	cp alerts/rules/shadowgate.rules.yaml $(CHART)/files/shadowgate.rules.yaml

.PHONY: manifests
manifests: chart-sync helm ## Render deploy/install.yaml: the chart with its defaults, for kubectl apply
	{ cat deploy/namespace.yaml; \
	  $(HELM) template shadowgate $(CHART) --namespace shadowgate-system --kube-version $(KUBE_VERSION) --include-crds; } > deploy/install.yaml

.PHONY: helm-lint
helm-lint: chart-sync helm ## helm lint the chart strictly, with its defaults and with every feature on
	$(HELM) lint --strict $(CHART) --namespace shadowgate-system --kube-version $(KUBE_VERSION)
	$(HELM) lint --strict $(CHART) --namespace shadowgate-system --kube-version $(KUBE_VERSION) -f deploy/testdata/values/everything.good.yaml

.PHONY: verify-manifests
verify-manifests: manifests ## Fail if the chart's copies or deploy/install.yaml differ from what is committed
	@git diff --exit-code -- deploy/ || { echo "deploy/ is out of date: run make manifests and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- deploy/); \
	if [ -n "$$untracked" ]; then echo "untracked files in deploy/ (commit them):"; echo "$$untracked"; exit 1; fi

.PHONY: image
image: ## Build the container image IMAGE with CONTAINER_TOOL (docker or podman)
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: fuzz-seeds
fuzz-seeds: ## Fuzz the flow parser, its fast decoders against protojson and proto.Unmarshal, and the manifest loader briefly (FUZZTIME each)
	$(GO) test -run='^$$' -fuzz='^FuzzParseLine$$' -fuzztime=$(FUZZTIME) ./flows
	$(GO) test -run='^$$' -fuzz='^FuzzFastDecoder$$' -fuzztime=$(FUZZTIME) ./flows
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) ./evaluator/cluster
	$(GO) test -run='^$$' -fuzz='^FuzzWireDecoder$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=100x ./flows/hubble

.PHONY: fuzz
fuzz: ## Fuzz for longer (FUZZTIME=5m make fuzz), and run the differential tests on many more worlds
	$(MAKE) fuzz-seeds FUZZTIME=$(if $(filter 10s,$(FUZZTIME)),2m,$(FUZZTIME))
	$(GO) test -count=1 -run='^(TestDifferential|TestEngineUpdates)$$' ./evaluator -differential.n=20000 -update.n=2000
	$(GO) test -count=1 -run='^TestFastDecoderAgreesWithProtojson$$' ./flows -fast.lines=1000000

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
