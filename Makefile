# Wapim developer commands. The README's two: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Defaults come from config/default.toml (config/embedded.toml for `wapim`); any WAPIM_*
# variable set in the environment wins.

.PHONY: help openapi api-fuzz browser services build run demo bench gateway dispatcher ingest migrate test lint fmt bench-api bench-pipeline bench-ingest bench-embedded chaos replay-dlq deploy-check docker clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

services: ## Install/start what Wapim needs locally (libpq, PostgreSQL, cargo-nextest)
	@bash .ci/services.sh

build: ## Build every binary
	cargo build --workspace --bins

run: ## Run `wapim`: API, ingest and dispatcher in one process on ./wapim.db (nothing else to install)
	cargo run -q -p wapim --bin wapim

demo: ## `wapim --demo`: also a WAHA simulator and a demo device, with curl lines to try
	cargo run -q -p wapim --bin wapim -- --demo

gateway: services ## Run the REST gateway alone on PostgreSQL + RabbitMQ (prints an operator token unless WAPIM_AUTH__ADMIN_TOKEN is set)
	@cargo build -q -p wapim-gateway --bin gateway
	@if [ -z "$$WAPIM_AUTH__ADMIN_TOKEN" ]; then \
	  export WAPIM_AUTH__ADMIN_TOKEN=$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
	  echo "Operator token for this run (Authorization: Bearer ...): $$WAPIM_AUTH__ADMIN_TOKEN"; \
	fi; \
	exec ./target/debug/gateway

dispatcher: services ## Run a dispatcher (consumes send jobs, calls WAHA at WAPIM_WAHA__URL)
	cargo run -q -p wapim-dispatcher --bin dispatcher

ingest: services ## Run the webhook ingest (WAHA's events at :8001/api/v1/waha-webhook)
	WAPIM_HTTP__PORT=$${WAPIM_HTTP__PORT:-8001} cargo run -q -p wapim-webhook-ingest --bin webhook-ingest

bench: bench-api bench-pipeline bench-ingest bench-embedded ## Every benchmark, each beside its baseline (long; restarts nothing)

bench-pipeline: services ## Send path end to end (accept → WAHA simulator) beside RabbitMQ alone
	cargo bench -p wapim-dispatcher --bench pipeline

bench-ingest: services ## Webhook ingest: signed message.ack events answered and applied, beside pgbench's UPDATE
	cargo bench -p wapim-webhook-ingest --bench ingest

bench-embedded: ## The single binary: start-up, idle RSS, end-to-end sends on SQLite + memory:// beside the WAHA simulator alone (adds a PostgreSQL + RabbitMQ row when both are up)
	cargo bench -p wapim --bench embedded

chaos: services ## Soak: 10,000 messages through faults, dispatcher SIGKILLs, RabbitMQ and PostgreSQL restarts (restarts shared servers: run alone)
	cargo build -q -p wapim-dispatcher --bins --examples
	./target/debug/examples/chaos

replay-dlq: ## Move dead-lettered send jobs back to the send queue (WAPIM_AMQP__URL)
	cargo run -q -p wapim-dispatcher --bin dispatcher -- replay-dlq

migrate: services ## Apply database migrations and exit
	cargo run -q -p wapim-gateway --bin gateway -- migrate

browser: ## Install Debian's Chromium and ChromeDriver for the dashboard's browser test (only what is missing)
	@bash .ci/browser.sh

test: services browser ## Run every test, on both set-ups (PostgreSQL + RabbitMQ, SQLite + in-process queue)
	cargo nextest run --workspace --locked

openapi: ## Write the REST API's OpenAPI document to proto/openapi.json (a test fails while it differs from the served one)
	cargo run -q -p wapim -- openapi > proto/openapi.json

api-fuzz: ## Fuzz the REST API from its OpenAPI document with schemathesis (PyPI), as the operator and as a device; fails on any 5xx or an answer the document does not describe
	@bash .ci/api-fuzz.sh

lint: ## Formatting and clippy, as CI checks them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

bench-api: services ## POST /api/messages throughput and latency next to pgbench
	cargo bench -p wapim-gateway --bench post_messages

deploy-check: ## Validate deploy/ offline (manifests, compose, Dockerfile, dashboard, alert rules)
	bash .ci/deploy-check.sh

docker: ## Build the container image (needs a container engine; not available on the CI machine)
	docker build -f deploy/Dockerfile -t wapim:dev .

clean: ## Remove build output
	cargo clean
