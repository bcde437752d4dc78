# scorch: `make run` starts the service, `make test` runs every test (as root
# for the BPF ones) after installing what they need.

GO        ?= go
BIN       := bin/scorch
DATA      ?= ./scorch-data
LISTEN    ?= 127.0.0.1:7070
BPF2GO_CFLAGS := -O2 -g -Wall -Werror
export BPF2GO_CFLAGS

.PHONY: all build run test test-go generate check-generated deps bench lint fuzz parca clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/scorch (needs no clang: the BPF objects are committed)
	$(GO) build -o $(BIN) ./cmd/scorch

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

test: deps check-generated lint parca test-go fuzz ## everything CI runs

test-go:
	$(GO) test -count=1 -timeout 30m ./...

parca: ## build (once; cached) the Parca server the fleet end-to-end test pushes to
	@./scripts/build-parca.sh >/dev/null || echo "warning: the Parca server could not be built; its end-to-end test will skip and say why"

fuzz: ## run every fuzz target briefly
	./scripts/fuzz.sh

bench: build ## benchmarks, reported as ratios against baselines measured in the same run
	./scripts/bench.sh

clean:
	rm -rf bin
