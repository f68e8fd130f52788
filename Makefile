# j1ds make targets. `make test` is what CI runs (.ci/run).
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test lint unit bench run fuzz

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

# Fuzz each target for FUZZTIME (seeds alone run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseObject$$' -fuzztime=$(FUZZTIME) ./internal/graph/
	$(GO) test -run='^$$' -fuzz='^FuzzValidateID$$' -fuzztime=$(FUZZTIME) ./internal/accounts/
	$(GO) test -run='^$$' -fuzz='^FuzzBucketName$$' -fuzztime=$(FUZZTIME) ./internal/settings/
	$(GO) test -run='^$$' -fuzz='^FuzzObjectKey$$' -fuzztime=$(FUZZTIME) ./internal/exporter/
	$(GO) test -run='^$$' -fuzz='^FuzzSyncUpload$$' -fuzztime=$(FUZZTIME) ./internal/api/
	$(GO) test -run='^$$' -fuzz='^FuzzRESTBody$$' -fuzztime=$(FUZZTIME) ./internal/api/
