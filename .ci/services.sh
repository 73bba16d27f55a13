#!/usr/bin/env bash
# Makes sure what Wapim's tests and local runs need is installed and running on this machine:
# the libpq headers (diesel's PostgreSQL driver links libpq), cargo-nextest, PostgreSQL and
# RabbitMQ (guest/guest on 127.0.0.1:5672). SQLite is compiled into the binaries.
# Safe to run again: each step checks first.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_ready=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_config >/dev/null 2>&1 || ! [ -e "$(pg_config --libdir 2>/dev/null)/libpq.so" ]; then
  log "installing libpq-dev"
  apt_install libpq-dev
fi

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-contrib
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
fi
for _ in $(seq 1 60); do
  if pg_isready -h 127.0.0.1 -p 5432 -q; then
    break
  fi
  sleep 1
done
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "PostgreSQL did not answer on 127.0.0.1:5432 within 60 s"
  exit 1
fi
# Tests connect as postgres over TCP without a password (trust auth on this kind of machine).
if ! psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  log "cannot connect as postgres@127.0.0.1 without a password; set WAPIM_TEST_DATABASE_URL"
fi
log "PostgreSQL is up"

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing RabbitMQ"
  apt_install rabbitmq-server
fi
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 90); do
  if amqp_up && rabbitmqctl -q status >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
if ! amqp_up; then
  log "RabbitMQ did not answer on 127.0.0.1:5672 within 90 s"
  exit 1
fi
rabbitmqctl -q await_startup >/dev/null 2>&1 || true
# Tests and soaks declare queues under their own prefixes (t_<uuid>., chaos_<uuid>.); a test that
# dies before deleting them would leave them forever. Unused test queues expire after 10 minutes.
rabbitmqctl -q set_policy --apply-to queues wapim-test-expiry '^(t|chaos)_' '{"expires":600000}' >/dev/null 2>&1 || true
log "RabbitMQ is up"
