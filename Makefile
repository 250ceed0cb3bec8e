# blockkv — every target a newcomer or CI needs. Only the Rust toolchain is
# assumed; anything else a target needs, it installs.
CARGO    ?= cargo
PREFIX   ?= $(HOME)/.local
# Crash-simulation seeds: `make test` runs 10,000; raise for long runs,
# e.g. `make crash-sim CRASH_SEEDS=100000`.
CRASH_SEEDS ?= 10000

.PHONY: build run test lint crash-sim bench install clean

build:
	$(CARGO) build --release --workspace

# Starts kvd in the foreground on the default data file and socket (the
# daemon arrives with issue 3; until then this runs the engine demo, which
# opens ./blockkv-demo.kvdata, writes, reads, checkpoints and prints stats).
run:
	$(CARGO) run --release -p blockkv-engine --example demo

test:
	BLOCKKV_CRASH_SEEDS=$(CRASH_SEEDS) $(CARGO) test --workspace --release

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

crash-sim:
	BLOCKKV_CRASH_SEEDS=$(CRASH_SEEDS) $(CARGO) test --release -p blockkv-engine --test crash_sim

bench:
	$(CARGO) bench -p blockkv-engine --bench engine_bench

# Binaries (kvd, kvctl, kv-fsck, kv-bench) arrive with issues 3, 4 and 6;
# each adds its own install line here.
install: build
	mkdir -p $(PREFIX)/bin

clean:
	$(CARGO) clean
