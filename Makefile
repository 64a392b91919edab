# pvhub — developer commands. `make help` lists them.

GO        ?= go
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.DEFAULT_GOAL := help

.PHONY: help build run test test-deps bench fuzz lint fmt docs clean

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/pvhub.
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/pvhub ./cmd/pvhub

run: build ## Start pvhub with the embedded default configuration (loopback only).
	./$(BIN)/pvhub serve

test-deps: ## Install the Debian packages the interop tests need (root only; no-op when present).
	@./scripts/test-deps.sh

test: test-deps lint ## go vet, the gofmt check and every test with the race detector (installs interop packages first).
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

bench: ## Run the benchmarks with allocation counts.
	BENCHTIME=$(BENCHTIME) ./scripts/bench.sh $(PKGS)

fuzz: ## Run every fuzz target for FUZZTIME each (default 30s).
	@./scripts/fuzz.sh $(FUZZTIME)

lint: ## go vet and a gofmt check.
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## Format the Go sources.
	gofmt -w $$(git ls-files '*.go')

docs: ## Regenerate docs/configuration.md from package config (a test fails when it is stale).
	$(GO) test ./config -run '^TestReferenceUpToDate$$' -count=1 -update

clean: ## Remove build output.
	rm -rf $(BIN)
