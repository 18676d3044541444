# Ordo's developer entry points. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO        ?= go
BIN       := bin/ordo
PKGS      := ./...
GOLANGCI  := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

.PHONY: help
help: ## List the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/ordo
	$(GO) build -o $(BIN) ./cmd/ordo

# The Dockerfile's build, on the host, with its flags: CI runs it, and a test
# checks that the Dockerfile's go build and this one have the same flags.
STATIC_BIN := bin/ordo-static

.PHONY: build-static
build-static: ## Build bin/ordo-static as the Dockerfile does (static, -trimpath, stripped) and check it is static
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(STATIC_BIN) ./cmd/ordo
	@$(GO) version -m $(STATIC_BIN) | grep -q 'CGO_ENABLED=0' || { echo "$(STATIC_BIN): not built with CGO_ENABLED=0"; exit 1; }
	@command -v ldd >/dev/null || { echo "build-static: no ldd to check $(STATIC_BIN) with"; exit 1; }
	@if ldd $(STATIC_BIN) >/dev/null 2>&1; then ldd $(STATIC_BIN); echo "$(STATIC_BIN) is dynamically linked: the Dockerfile's distroless/static image could not run it"; exit 1; fi
	@if command -v file >/dev/null; then file $(STATIC_BIN) | grep -q 'statically linked.*stripped' || { file $(STATIC_BIN); echo "$(STATIC_BIN): want statically linked and stripped"; exit 1; }; fi
	@./$(STATIC_BIN) --version >/dev/null
	@echo "$(STATIC_BIN): statically linked, $$(du -h $(STATIC_BIN) | cut -f1)"

.PHONY: run
run: build ## Run the demo: embedded broker, demo producer, example pipeline (Ctrl-C stops)
	./$(BIN) dev --demo

.PHONY: test
test: ## Run every test with the race detector
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

.PHONY: test-short
test-short: ## Quick tests (fewer seeds), with the race detector
	$(GO) test -race -short -count=1 $(PKGS)

.PHONY: bench
bench: build ## Benchmarks vs raw franz-go and Parallel Consumer's volume test (writes .bench/results.json)
	@mkdir -p .bench
	./$(BIN) bench --out .bench/results.json

.PHONY: bench-quick
bench-quick: build ## The benchmarks' smoke version (< 30 s)
	@mkdir -p .bench
	./$(BIN) bench --quick --out .bench/quick.json

.PHONY: fuzz
fuzz: ## Fuzz the offset tracker, the offset-map codec and the topic parser, 30 s each
	$(GO) test -run=XXX -fuzz=FuzzTracker -fuzztime=30s ./pkg/ordo/
	$(GO) test -run=XXX -fuzz=FuzzOffsetMapDecode -fuzztime=30s ./pkg/ordo/
	$(GO) test -run=XXX -fuzz=FuzzOffsetMapRoundTrip -fuzztime=30s ./pkg/ordo/
	$(GO) test -run=XXX -fuzz=FuzzParse -fuzztime=30s ./pkg/topics/

.PHONY: docs
docs: ## Regenerate docs/cli-reference.md from the commands (TestCLIReferenceIsCurrent checks it)
	$(GO) run ./internal/cli/clidoc > docs/cli-reference.md

.PHONY: lint
lint: ## go vet, gofmt and golangci-lint (fetched through the module proxy)
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) run $(GOLANGCI) run $(PKGS)

COMPOSE ?= docker compose

.PHONY: compose-up
compose-up: ## Build the image and start the docker compose stack (Redpanda, topics, worker, lag exporter, Prometheus, Grafana...)
	$(COMPOSE) up -d --build
	@echo
	@echo "  Kafka API (host)   localhost:19092"
	@echo "  Redpanda Console   http://localhost:8080"
	@echo "  Grafana            http://localhost:3000  (dashboard: Ordo)"
	@echo "  Prometheus         http://localhost:9090"
	@echo "  worker             http://localhost:19100/metrics  (/readyz, /healthz)"
	@echo "  lag exporter       http://localhost:19308/metrics"
	@echo "  Redis              localhost:16379"
	@echo "  PostgreSQL         postgres://ordo:ordo@localhost:15432/ordo"
	@echo
	@echo "  $(COMPOSE) ps                 the services and their health"
	@echo "  $(COMPOSE) logs -f worker     the worker's progress"
	@echo "  make compose-down             stop (make compose-clean: and delete the volumes)"

.PHONY: compose-down
compose-down: ## Stop the docker compose stack; its volumes (topics, offsets, data) are kept
	$(COMPOSE) down

.PHONY: compose-clean
compose-clean: ## Stop the docker compose stack and delete its volumes
	$(COMPOSE) down --volumes

.PHONY: clean
clean: ## Remove build and bench output
	rm -rf bin .bench
