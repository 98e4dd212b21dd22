# rolesenv — run `make help` for the targets.

SHELL := /bin/bash
GO ?= go
PKG := github.com/rolesenv/rolesenv
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
BIN := bin/rolesenv

# Nothing the build or the tests run may reach for the real AWS: no instance
# metadata, no shared config or credentials from the home directory.
export AWS_EC2_METADATA_DISABLED := true
export AWS_CONFIG_FILE := /nonexistent/rolesenv-make/config
export AWS_SHARED_CREDENTIALS_FILE := /nonexistent/rolesenv-make/credentials
export CGO_ENABLED := 0

.PHONY: help build build-pkcs11 test test-short test-busy check fmt vet staticcheck fuzz bench bench-quick demo release clean

help: ## show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/rolesenv (static, version stamped)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# The PKCS#11 build loads the token's module (a C shared library) with
# purego, still without cgo or a C toolchain; it is linked dynamically
# (libc and the dynamic loader), which a static binary cannot do without.
build-pkcs11: ## build bin/rolesenv-pkcs11 (pkcs11: URIs; needs the system's libc at run time)
	$(GO) build -trimpath -tags pkcs11 -ldflags '$(LDFLAGS)' -o $(BIN)-pkcs11 .

# -tags pkcs11: the tests cover the PKCS#11 build, a superset of the static one.
TEST := CGO_ENABLED=1 $(GO) test -race -tags pkcs11 -parallel 4 -timeout 12m ./...

# Then what ships and the tagged run cannot cover: the static build's
# answers to pkcs11: URIs (the !pkcs11 tests), and the PKCS#11 package
# without cgo, as make build-pkcs11 builds it (purego's fakecgo).
test: ## run every test with the race detector
	$(TEST)
	CGO_ENABLED=0 $(GO) test -short -run 'PKCS11|Pkcs11' .
	CGO_ENABLED=0 $(GO) test -tags pkcs11 ./internal/pkcs11key

test-short: ## quick tests for development: no race detector, no aws CLI, no moto_server
	$(GO) test -short -tags pkcs11 ./...

# Two CPU-bound processes compete with the tests for the cores, as on a busy
# CI machine: a test that assumes the machine is fast fails here. They are
# killed however the tests end: the EXIT trap runs after a failure too, and
# INT, TERM or HUP stop the tests and then the loops (the tests run in the
# background so that the shell takes the signal at once).
test-busy: ## run every test (as make test) while two busy loops compete for the cores
	@yes >/dev/null & y1=$$!; yes >/dev/null & y2=$$!; \
	trap 'kill $$y1 $$y2 2>/dev/null' EXIT; \
	trap 'kill $$t 2>/dev/null; wait $$t; exit 130' INT TERM HUP; \
	echo "test-busy: two busy loops (pids $$y1 $$y2) compete with the tests"; \
	$(TEST) & t=$$!; wait $$t

check: fmt vet staticcheck test fuzz ## what CI runs: gofmt, vet, staticcheck, race tests, short fuzzing

fmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags pkcs11 ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags pkcs11 ./...

fuzz: ## run every fuzz target for FUZZTIME (default 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

bench: ## full benchmarks; rewrites BENCHMARKS.md (under 15 minutes)
	$(GO) run ./internal/bench -out BENCHMARKS.md

bench-quick: ## quick benchmarks; rewrites BENCHMARKS.md (under a minute)
	$(GO) run ./internal/bench -quick -out BENCHMARKS.md

demo: build ## start the local emulator, run a command with secrets, rotate one
	./scripts/demo.sh $(BIN)

release: ## static binaries, and the PKCS#11 builds, for linux/amd64, linux/arm64, darwin/arm64 in dist/
	@set -e; for p in linux/amd64 linux/arm64 darwin/arm64; do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/rolesenv-$$os-$$arch . ; \
	  echo dist/rolesenv-$$os-$$arch; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags pkcs11 -ldflags '$(LDFLAGS)' -o dist/rolesenv-pkcs11-$$os-$$arch . ; \
	  echo dist/rolesenv-pkcs11-$$os-$$arch; \
	done; cd dist && sha256sum rolesenv-* > SHA256SUMS

clean: ## remove build output
	rm -rf bin dist
