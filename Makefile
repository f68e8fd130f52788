# j1ds make targets. `make test` is what CI runs (.ci/run).
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test lint unit bench run

build:
	$(GO) build -o bin/j1ds ./cmd/j1ds

# The whole suite: lint, then every test with the race detector.
test: lint unit

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Ingest figures: the store and the sync API against raw Pebble, same run.
bench: build
	./bin/j1ds bench

run: build
	./bin/j1ds serve
