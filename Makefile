# j1ds make targets. `make test` is what CI runs (.ci/run).
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test deps lint unit bench run fuzz

build:
	$(GO) build -o bin/j1ds ./cmd/j1ds

# The whole suite: install what the tests need and is missing, then lint,
# then every test with the race detector.
test: deps
	@$(MAKE) --no-print-directory lint unit

# Install with apt what the tests need beyond Go (Node.js, chromium,
# PostgreSQL, ...) when it is missing; nothing when everything is present.
deps:
	@GO='$(GO)' ./tools/install-test-deps

# Every test, then the failpoint package's own test in the build with
# failpoints (the end-to-end crash tests build j1ds with them themselves).
unit:
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -tags failpoints ./internal/failpoint/

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) vet -tags failpoints ./internal/failpoint/
	$(STATICCHECK) -tags failpoints ./internal/failpoint/

# The performance figures: encode limit, baseline, export to versitygw,
# latency, memory, idle cost and ingest, in one run (under ten minutes;
# --quick for a one-minute smoke run, --json for comparable output).
bench: build
	./bin/j1ds bench

run: build
	./bin/j1ds serve

# The matrices in full: the crash matrix (six rounds of every failpoint),
# the S3 fault matrix with 20 s spans, the outage longer than retention,
# disk full, the soak (1,000 accounts, 5 minutes), and the cluster chaos
# (3 nodes on one PostgreSQL: more rounds of SIGKILL, SIGSTOP, SIGTERM and a
# database restart). `make test` runs their short versions.
.PHONY: matrix
matrix:
	J1DS_MATRIX=full $(GO) test -race -count=1 -timeout 60m -v \
		-run '^(TestCrashMatrix|TestS3FaultMatrix|TestS3LateUploadAfterTimeout|TestS3OutageLongerThanRetention|TestDiskFullAPI|TestSoak|TestClusterChaos)$$' ./internal/e2e/

# Fuzz each target for FUZZTIME (seeds alone run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseObject$$' -fuzztime=$(FUZZTIME) ./internal/graph/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEntry$$' -fuzztime=$(FUZZTIME) ./internal/pebblestore/
	$(GO) test -run='^$$' -fuzz='^FuzzValidateID$$' -fuzztime=$(FUZZTIME) ./internal/accounts/
	$(GO) test -run='^$$' -fuzz='^FuzzBucketName$$' -fuzztime=$(FUZZTIME) ./internal/s3dest/s3bucket/
	$(GO) test -run='^$$' -fuzz='^FuzzObjectKey$$' -fuzztime=$(FUZZTIME) ./internal/exporter/
	$(GO) test -run='^$$' -fuzz='^FuzzSyncUpload$$' -fuzztime=$(FUZZTIME) ./internal/api/
	$(GO) test -run='^$$' -fuzz='^FuzzRESTBody$$' -fuzztime=$(FUZZTIME) ./internal/api/
