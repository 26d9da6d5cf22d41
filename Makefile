# billing-adapter build and test entry points. `make test` is what CI runs (.ci/run).
GO    ?= go
GOFMT ?= gofmt
BIN   := bin

# Every Go file in the tree (tracked or not), except build output and git internals.
GO_FILES_CMD := find . -name '*.go' -not -path './.git/*' -not -path './$(BIN)/*' -print0

.PHONY: all deps build run test lint fmt-check vet clean

all: build

## deps: install what the tests and `make run` need from the system (redis-server, via apt-get when missing)
deps:
	scripts/ensure-redis.sh --install-only

## build: bin/billing-adapter and bin/stripe-sim
build:
	$(GO) build -trimpath -o $(BIN)/ ./cmd/billing-adapter ./cmd/stripe-sim

## run: start Redis on loopback if needed and run the service against the embedded Stripe simulator
run:
	scripts/run.sh

## test: formatting, vet, then the whole suite with the race detector (tests start their own redis-server and stripe-mock)
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...

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
