# scorch: `make run` starts the service, `make test` runs every test (as root
# for the BPF ones) after installing what they need.

GO        ?= go
BIN       := bin/scorch
# The architectures `make build` builds bin/scorch-ARCH for (the BPF
# objects of both are committed); bin/scorch is this host's, for `make run`.
ARCHES    ?= amd64 arm64
HOSTARCH  := $(shell $(GO) env GOHOSTARCH)
DATA      ?= ./scorch-data
LISTEN    ?= 127.0.0.1:7070
BPF2GO_CFLAGS := -O2 -g -Wall -Werror
export BPF2GO_CFLAGS

.PHONY: all build run test test-go test-arm64 test-arm64-vm generate check-generated deps bench lint fuzz parca clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/scorch for this host and bin/scorch-amd64, bin/scorch-arm64 (no clang needed: the BPF objects are committed)
	GOARCH=$(HOSTARCH) $(GO) build -o $(BIN) ./cmd/scorch
	@for a in $(ARCHES); do \
		echo "GOARCH=$$a $(GO) build -o bin/scorch-$$a ./cmd/scorch"; \
		GOARCH=$$a CGO_ENABLED=0 $(GO) build -o bin/scorch-$$a ./cmd/scorch || exit 1; \
	done

run: build ## start the web service on $(LISTEN) with captures stored in $(DATA)
	./$(BIN) serve --listen $(LISTEN) --data $(DATA)

deps: ## install the Debian packages and npm tools the tests need
	./scripts/install-deps.sh

generate: ## regenerate the BPF objects (installs clang/llvm when missing)
	@command -v clang >/dev/null || ./scripts/install-deps.sh
	$(GO) generate ./bpf/...

check-generated: ## fail when the committed BPF objects do not match their C sources
	./scripts/check-generated.sh

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: deps check-generated lint test-arm64 parca test-go fuzz ## everything CI runs

test-go:
	$(GO) test -count=1 -timeout 30m ./...

test-arm64: ## cross-build and vet for arm64, run the arch-independent unit tests under qemu-user
	./scripts/test-arm64.sh

test-arm64-vm: ## boot an arm64 kernel under qemu-system-aarch64: doctor and captures of the arm64 build (minutes)
	./scripts/arm64-vm.sh

parca: ## build (once; cached) the Parca server the fleet end-to-end test pushes to
	@./scripts/build-parca.sh >/dev/null || echo "warning: the Parca server could not be built; its end-to-end test will skip and say why"

fuzz: ## run every fuzz target briefly
	./scripts/fuzz.sh

bench: build ## benchmarks, reported as ratios against baselines measured in the same run
	./scripts/bench.sh

clean:
	rm -rf bin
