# Strom — every build, test and run task goes through this file. `make help` lists the targets.

SHELL := /bin/bash
CARGO ?= cargo
# Every cargo command selects the whole workspace and all its targets: selecting one package,
# only the binaries or one bench changes which dependency features are unified, and that
# alone rebuilds RocksDB (10-15 minutes). Benchmarks run through scripts/bench.sh for this.
# Tests use the debug profile, benchmarks the release one, the fuzz build its own target dir.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/strom/fuzz-target
FUZZ_SECONDS ?= 60

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every crate (debug)
	$(CARGO) build --workspace --all-targets

.PHONY: release
release: ## Build the release binaries (and every other target, so benchmarks reuse the build)
	$(CARGO) build --workspace --all-targets --release

.PHONY: test
test: ## Run the whole test suite (multi-service tests run the service binaries, so build them first)
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: fmt-check
fmt-check: ## Check formatting
	$(CARGO) fmt --all -- --check

.PHONY: lint
lint: ## Clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

COMPOSE ?= docker-compose

.PHONY: images
images: ## Build the strom and etcd images (makes the Debian base image first when missing)
	@scripts/images.sh

.PHONY: up
up: ## Start the docker-compose cluster and wait until every service is healthy
	$(COMPOSE) up -d --no-build
	@scripts/compose-wait.sh

.PHONY: down
down: ## Stop the docker-compose cluster and remove its containers, network and volumes
	$(COMPOSE) down --volumes --remove-orphans

.PHONY: logs
logs: ## Follow the docker-compose cluster's logs
	$(COMPOSE) logs --follow --tail=100

.PHONY: ps
ps: ## The docker-compose cluster's containers and their health
	$(COMPOSE) ps

.PHONY: k8s-validate
k8s-validate: ## Render every Kubernetes overlay and validate it against the Kubernetes 1.30 schemas, offline
	@scripts/k8s-validate.sh

.PHONY: compose-test
compose-test: ## End to end on the compose cluster: RF 3 topic, kill the leader mid-produce, read back every acknowledged record
	@scripts/compose-test.sh

.PHONY: bench
bench: ## The standard benchmark set (strom bench suite) against a local 3-broker dev cluster, one table
	@scripts/bench-cluster.sh $(BENCH_ARGS)

.PHONY: bench-control-plane
bench-control-plane: ## Failover and metadata-propagation timings against a real etcd (medians)
	@scripts/bench.sh control_plane dev

.PHONY: bench-data-plane
bench-data-plane: ## Produce/consume throughput and latency vs NATS JetStream and iperf3 (medians)
	@scripts/bench.sh data_plane

.PHONY: bench-groups
bench-groups: ## Offset-commit throughput through one coordinator and rebalance time after a join (medians)
	@scripts/bench.sh groups

.PHONY: bench-storage
bench-storage: ## Storage benchmarks: append and sequential read of one partition
	@scripts/bench.sh partition_log

.PHONY: bench-record
bench-record: ## Batch validation benchmark
	@scripts/bench.sh validate

.PHONY: disk-baseline
disk-baseline: ## Measure this disk's buffered sequential write bandwidth with fio (compare with bench-storage)
	@scripts/disk-baseline.sh

.PHONY: chaos
chaos: ## Every fault scenario, CHAOS_PASSES times in a row (default 5), checked and summarised
	@scripts/chaos.sh $(CHAOS_ARGS)

.PHONY: fuzz-build
fuzz-build: ## Build the fuzz targets (cargo-fuzz)
	@scripts/fuzz.sh build

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_SECONDS (default 60)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh run

.PHONY: ci
ci: fmt-check lint fuzz-build k8s-validate test compose-test ## Everything CI runs, in order

.PHONY: clean
clean: ## Remove build output of this workspace's crates only (keeps the RocksDB build)
	$(CARGO) clean -p strom-types -p strom-proto -p strom-record -p strom-storage
