# xvs — build, test and demo. Run as root (elsewhere: prefix sudo).
#   make deps   system packages (apt-get) and npm packages (npm ci); quiet when all is present
#   make        BPF objects, the native addon, TypeScript; rebuilds only what changed
#   make test   everything above, then the whole test suite (node-tap)
#   make demo   everything above, then a namespace lab with xvs in it
#   make bench  benchmarks (never part of the tests)

SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := clang llvm libbpf-dev bpftool pkg-config make g++ python3 openssl procps \
	iproute2 ethtool tcpdump nftables iptables iputils-ping netcat-openbsd curl keepalived

ARCH_INC := /usr/include/$(shell gcc -dumpmachine 2>/dev/null)
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -Wno-unused-function \
	-Ibpf/include -I$(ARCH_INC)

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,out/bpf/%.bpf.o,$(BPF_SRCS))
FIXTURE_SRCS := $(wildcard test/fixtures/*.bpf.c)
FIXTURE_OBJS := $(patsubst test/fixtures/%.bpf.c,out/fixtures/%.bpf.o,$(FIXTURE_SRCS))
BENCH_BPF_SRCS := $(wildcard bench/*.bpf.c)
BENCH_BPF_OBJS := $(patsubst bench/%.bpf.c,out/bench/%.bpf.o,$(BENCH_BPF_SRCS))
BPF_HDRS := $(shell find bpf -name '*.h' 2>/dev/null)

NATIVE_SRCS := $(wildcard native/*.cc native/*.h)
ADDON := build/Release/xvs_native.node

TS_SRCS := $(shell find src test bench -name '*.ts' 2>/dev/null)
TS_STAMP := dist/.stamp

NPM_STAMP := node_modules/.package-lock.json
DEPS_STAMP := out/.deps

.PHONY: all build deps bpf native ts test demo bench clean distclean

all: build
build: bpf native ts

# --- dependencies ----------------------------------------------------------
deps: $(DEPS_STAMP) $(NPM_STAMP)

# apt-get only what is missing; the stamp is refreshed when this Makefile changes.
$(DEPS_STAMP): Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: missing packages:$$missing; run as root (or with sudo)" >&2; exit 1; fi; \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@mkdir -p out && touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# --- BPF objects -------------------------------------------------------------
bpf: $(BPF_OBJS) $(FIXTURE_OBJS) $(BENCH_BPF_OBJS)

out/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	clang $(BPF_CFLAGS) -c $< -o $@

out/fixtures/%.bpf.o: test/fixtures/%.bpf.c $(BPF_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	clang $(BPF_CFLAGS) -c $< -o $@

out/bench/%.bpf.o: bench/%.bpf.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	clang $(BPF_CFLAGS) -c $< -o $@

# --- native addon ------------------------------------------------------------
native: $(ADDON)

$(ADDON): $(NATIVE_SRCS) binding.gyp | $(DEPS_STAMP) $(NPM_STAMP)
	npx --no-install node-gyp rebuild --nodedir=$(if $(wildcard /usr/include/node/node.h),/usr,$(shell dirname $$(dirname $$(which node)))) --loglevel=error >/dev/null
	@test -f $@

# --- TypeScript --------------------------------------------------------------
ts: $(TS_STAMP)

$(TS_STAMP): $(TS_SRCS) tsconfig.json | $(NPM_STAMP)
	npx --no-install tsc -p tsconfig.json
	@touch $@

# --- entry points --------------------------------------------------------------
test: deps build
	npx --no-install tap

demo: deps build
	node dist/src/lab/demo.js

bench: deps build
	node dist/bench/run.js

clean:
	rm -rf build out dist .tap

distclean: clean
	rm -rf node_modules
