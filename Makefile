# blockkv — every target a newcomer or CI needs. Only the Rust toolchain is
# assumed; anything else a target needs, it installs.
CARGO    ?= cargo
PREFIX   ?= $(HOME)/.local
# Crash-simulation seeds: `make test` runs 10,000; raise for long runs,
# e.g. `make crash-sim CRASH_SEEDS=100000`.
CRASH_SEEDS ?= 10000
# Seconds per fuzz target for `make fuzz`; e.g. FUZZ_SECONDS=1800 for a long run.
FUZZ_SECONDS ?= 60

# Where `make test-deps` puts the client libraries the compatibility tests
# drive (compat/clients/install.sh): beside cargo's build output, which is
# where the tests look for them (or $$BLOCKKV_CLIENTS_DIR).
CLIENTS_DIR ?= $(or $(CARGO_TARGET_DIR),target)/clients
# The differential test against redis-server (compat/tests/differential/):
# `make test` runs 20 seeds of 500 commands; `make diff-test` this many.
DIFF_SEEDS ?= 200
DIFF_COMMANDS ?= 20000

.PHONY: build run demo test test-deps bench-deps lint diff-test crash-sim crash-test bench bench-engine plots fuzz install clean

build:
	$(CARGO) build --release --workspace

# Starts kvd in the foreground on the default data file and socket
# ($KV_DATA / $KV_SOCKET, else per-user paths), creating a 64 MiB file on
# first start. Stop it with Ctrl-C (SIGINT: clean checkpoint, exit 0).
run:
	$(CARGO) run --release -p blockkv-daemon --bin kvd -- --foreground

# The engine on its own: opens ./blockkv-demo.kvdata, writes, reads,
# checkpoints and prints stats.
demo:
	$(CARGO) run --release -p blockkv-engine --example demo

test: test-deps
	BLOCKKV_CRASH_SEEDS=$(CRASH_SEEDS) $(CARGO) test --workspace --release

# Debian packages: redis-cli for the RESP tests, redis-server for the
# compatibility tests' side-by-side runs, the Prometheus exporter they scrape
# (installed when missing and possible: scripts/ensure-packages.sh); redis-py,
# node-redis and ioredis into $(CLIENTS_DIR). A test whose tool is missing
# says "skipped" and why.
test-deps:
	@scripts/ensure-packages.sh redis-cli=redis-tools redis-server=redis-server \
		prometheus-redis-exporter=prometheus-redis-exporter || \
		echo "make: without these, the RESP and compatibility tests that run them say skipped"
	@compat/clients/install.sh $(CLIENTS_DIR) || \
		echo "make: without the client libraries, the scenarios that drive them say skipped"

# The differential test against redis-server, long: DIFF_SEEDS seeded
# sequences of DIFF_COMMANDS commands each (the seed of a failure is printed;
# BLOCKKV_DIFF_SEED=N replays that one).
diff-test: test-deps
	$(CARGO) build --release -p blockkv-daemon --bin kvd
	BLOCKKV_DIFF_SEEDS=$(DIFF_SEEDS) BLOCKKV_DIFF_COMMANDS=$(DIFF_COMMANDS) \
		$(CARGO) test --release -p blockkv-compat --test differential -- --nocapture

bench-deps:
	scripts/ensure-packages.sh redis-server=redis-server redis-benchmark=redis-tools

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

crash-sim:
	BLOCKKV_CRASH_SEEDS=$(CRASH_SEEDS) $(CARGO) test --release -p blockkv-engine --test crash_sim

# kill -9 against real kvd processes, 1,000 cycles (make test runs 30):
# see recovery-tests/crash-test.sh.
crash-test:
	recovery-tests/crash-test.sh --cycles 1000

# kvd against redis-server in one run (bench/compare.sh: redis-benchmark
# and kv-bench, A B B A rounds, medians and ratios; restart time and memory
# per key at 1M keys), also written as JSON to target/bench/compare.json.
# BENCH_ARGS, e.g. "--rounds 5 --requests 500000". docs/BENCHMARKS.md.
BENCH_ARGS ?=
bench: bench-deps
	bench/compare.sh $(BENCH_ARGS)

# The engine alone, without the daemon (engine/benches/engine_bench.rs).
bench-engine:
	$(CARGO) bench -p blockkv-engine --bench engine_bench

# docs/plots/*.png from the benchmarks' JSON (bench/plot.sh: gnuplot). To run
# every benchmark first and then plot: bench/plot.sh --run.
plots:
	bench/plot.sh

# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of damaged file images
# (open in every recovery mode, reads, writes, kv-fsck), of native
# protocol streams, and of RESP streams run against a store (transactions
# and WATCH across two sessions: daemon/src/fuzzing.rs). Needs the nightly toolchain; installs cargo-fuzz if
# missing. `-s none`: the engine and protocol have no unsafe code on these
# paths, so AddressSanitizer would only slow the run (~2x); panics, hangs
# and debug assertions are what the targets catch. Findings land in
# */fuzz/artifacts/; each becomes a regression test (engine/tests/fuzz_found.rs).
fuzz:
	rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd engine && $(CARGO) +nightly fuzz run -s none image -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=2048 -len_control=20 -timeout=10
	cd protocol && $(CARGO) +nightly fuzz run -s none frames -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10
	cd daemon && mkdir -p fuzz/corpus/resp && $(CARGO) +nightly fuzz run -s none resp fuzz/corpus/resp fuzz/seeds -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10

install: build
	mkdir -p $(PREFIX)/bin
	install -m 0755 target/release/kvd target/release/kvctl target/release/kv-fsck target/release/kv-bench $(PREFIX)/bin/

clean:
	$(CARGO) clean
