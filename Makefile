# billing-adapter build and test entry points. `make test` is what CI runs (.ci/run).
GO    ?= go
GOFMT ?= gofmt
BIN   := bin

# Every Go file in the tree (tracked or not), except build output and git internals.
GO_FILES_CMD := find . -name '*.go' -not -path './.git/*' -not -path './$(BIN)/*' -print0

.PHONY: all deps stripe-cli build run reset test bench bench-go lint fmt-check vet clean screenshots

all: build

## deps: install what the tests and `make run` need from the system (redis-server, and chromium for the console's
## browser test, via apt-get when missing)
deps:
	scripts/ensure-redis.sh --install-only
	scripts/ensure-chromium.sh

## stripe-cli: the real Stripe CLI, npm @stripe/cli at the version locked in tools/stripe-cli (no global install)
stripe-cli:
	scripts/ensure-stripe-cli.sh >/dev/null

## build: bin/billing-adapter, bin/stripe-sim and bin/billing-bench (-trimpath)
build:
	$(GO) build -trimpath -o $(BIN)/ ./cmd/billing-adapter ./cmd/stripe-sim ./cmd/billing-bench

## run: start Redis on loopback if needed and run the service against the embedded Stripe simulator
run: stripe-cli
	scripts/run.sh

## reset: wipe the local world of `make run` (its Redis on 127.0.0.1:6391 and the simulator's state under .local)
reset:
	scripts/local-world.sh reset

## test: formatting, vet, then the whole suite with the race detector (tests start their own redis-server and stripe-mock)
test: deps stripe-cli lint
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: handler benchmarks (allocs/op), then the load tool on its own loopback stack (docs/BENCHMARKS.md).
## Override e.g. `make bench BENCH_FLAGS="-scenario validate,webhook -n 20000 -c 64"`; add -json for JSON.
BENCH_FLAGS    ?= -n 10000 -stripe-n 2000 -c 64
BENCH_GO_COUNT ?= 2000x
bench: deps build bench-go
	$(BIN)/billing-bench -bin $(BIN) -gobench $(BIN)/gobench.txt $(BENCH_FLAGS)

## bench-go: the handler benchmarks alone (go test -bench -benchmem), saved to bin/gobench.txt
bench-go:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCH_GO_COUNT) ./cmd/billing-adapter > $(BIN)/gobench.txt; \
		status=$$?; cat $(BIN)/gobench.txt; exit $$status

## screenshots: run the console's browser test and save its screenshots into docs/
screenshots: deps
	CONSOLE_SCREENSHOTS=docs $(GO) test -count=1 -run TestConsoleInABrowser ./cmd/billing-adapter

## lint: gofmt check and go vet
lint: fmt-check vet

fmt-check:
	@files="$$($(GO_FILES_CMD) | xargs -0 -r $(GOFMT) -l)" || { echo "gofmt failed (syntax error?)" >&2; exit 1; }; \
	if [ -n "$$files" ]; then \
		echo "these files need gofmt (run: gofmt -w <file>):" >&2; \
		echo "$$files" >&2; \
		exit 1; \
	fi

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN) coverage.out
