#!/usr/bin/env bash
# Bounded API fuzzing of the `wapim` binary with schemathesis, against the OpenAPI document it
# serves (GET /api/openapi.json). Finds any 5xx: the `not_a_server_error` check always runs and
# any failure fails the script. schemathesis comes from PyPI into a venv (WAPIM_FUZZ_VENV,
# default /tmp/wapim-fuzz-venv), installed once and reused.
#
#   bash .ci/api-fuzz.sh
#
# wapim runs on a free loopback port with a throwaway SQLite database and the in-process queue;
# WAHA is a closed loopback port, so the routes that call WAHA while answering (API_FUZZ_WAHA_PATHS)
# may answer 502/504 ("WAHA could not be reached"); any other 5xx fails there too. Where
# unprivileged user namespaces are allowed (`unshare -rn`), wapim and schemathesis run in a
# network namespace of their own holding only a loopback interface, so no request can leave the
# machine whatever the fuzzer registers (webhook URLs, WAHA servers). Elsewhere the
# /api/waha-servers routes are left out, since wapim calls the servers registered there.
#
# Two runs: as the operator (`wapim reset-token` against the same database) and as a device
# created through the API (X-Session-Id + X-Session-Secret-Token). Half of the generated ids and
# session ids are the run's own device, so handlers get past their 404s; a schemathesis hook
# restores that device when the run deletes it and puts its secret token back when the run
# changes it, so the rest of the run still reaches it.
#
# Settings (environment):
#   WAPIM_BIN                 the binary (default target/debug/wapim; built with
#                             `cargo build -p wapim` only when that default is missing)
#   API_FUZZ_SPEC             an OpenAPI file (JSON or YAML; relative to the repository root) to
#                             fuzz instead of the binary's own document
#   API_FUZZ_CHECKS           schemathesis checks besides not_a_server_error (which always runs),
#                             comma-separated (default status_code_conformance,
#                             response_schema_conformance; "none": not_a_server_error alone)
#   API_FUZZ_MAX_EXAMPLES     test cases per operation in the fuzzing phase (default 50)
#   API_FUZZ_PHASES           schemathesis phases (default examples,coverage,fuzzing,stateful)
#   API_FUZZ_SEED             Hypothesis seed (default 1; empty: random, printed by schemathesis)
#   API_FUZZ_RUNS             which runs: "operator device" (default), "operator" or "device"
#   API_FUZZ_WAHA_PATHS       path regex of the routes allowed 502/504 (default: /api/v1/waha/...
#                             and /api/devices/{id}/qr)
#   API_FUZZ_EXCLUDE          path regex of operations left out (default: none)
#   API_FUZZ_RUN_TIMEOUT      seconds one schemathesis run may take before it counts as failed (80)
#   API_FUZZ_NETNS            auto (default), 1 (required) or 0 (never) for the network namespace
#   API_FUZZ_REPORT_DIR       where to write JUnit reports (default: none written)
#   API_FUZZ_ARGS             more `schemathesis run` arguments, split on spaces
#   API_FUZZ_LOG_LEVEL        wapim's log level (default info; the log is shown on failure)
#   API_FUZZ_KEEP=1           keep the temporary directory (database, logs, spec) afterwards
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
REQUIRED=(schemathesis==$SCHEMATHESIS_VERSION)

if [ "${API_FUZZ_INNER:-}" != 1 ]; then
  started=$(date +%s)
  VENV=${WAPIM_FUZZ_VENV:-/tmp/wapim-fuzz-venv}
  stamp="$(printf '%s\n' "${REQUIRED[@]}" | sha256sum | cut -c1-16)"

  echo "== api-fuzz: schemathesis ($VENV)"
  # shellcheck source=.ci/python-env.sh
  source "$ROOT/.ci/python-env.sh"
  python_env "$VENV"

  stampfile="$VENV/.wapim-api-fuzz-$stamp"
  if [ "$PY" != python3 ] && [ -f "$stampfile" ]; then
    echo "schemathesis already installed"
  else
    if ! pip_install "${REQUIRED[@]}"; then
      echo "FAIL: could not install ${REQUIRED[*]} from PyPI (on Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
    if [ "$PY" != python3 ]; then touch "$stampfile"; fi
  fi
  got=$("$PY" -m schemathesis.cli --version 2>/dev/null | awk '{print $NF}' || true)
  if [ "$got" != "$SCHEMATHESIS_VERSION" ]; then
    echo "FAIL: schemathesis $SCHEMATHESIS_VERSION wanted, ${got:-none} found" >&2
    exit 1
  fi

  BIN=${WAPIM_BIN:-target/debug/wapim}
  if [ ! -x "$BIN" ]; then
    if [ -z "${WAPIM_BIN:-}" ]; then
      echo "== api-fuzz: $BIN missing: cargo build -p wapim"
      cargo build -p wapim
    else
      echo "FAIL: WAPIM_BIN=$BIN is not an executable" >&2
      exit 1
    fi
  fi
  case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

  # Brings up `lo` in a fresh network namespace (no iproute2 needed).
  LO_UP='import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))'
  netns=${API_FUZZ_NETNS:-auto}
  if [ "$netns" != 0 ] && command -v unshare >/dev/null \
     && unshare --user --map-root-user --net python3 -c "$LO_UP" 2>/dev/null; then
    echo "== api-fuzz: in a network namespace of its own (loopback only)"
    export API_FUZZ_INNER=1 API_FUZZ_IN_NETNS=1 API_FUZZ_PY="$PY" API_FUZZ_BIN="$BIN" \
      API_FUZZ_STARTED="$started" API_FUZZ_LO_UP="$LO_UP"
    exec unshare --user --map-root-user --net -- bash "$SELF"
  elif [ "$netns" = 1 ]; then
    echo "FAIL: API_FUZZ_NETNS=1 but \`unshare --user --net\` is not allowed here" >&2
    exit 1
  fi
  echo "note: no network namespace (unprivileged user namespaces refused, or API_FUZZ_NETNS=0):" \
       "the /api/waha-servers routes are left out"
  API_FUZZ_IN_NETNS=0 API_FUZZ_PY="$PY" API_FUZZ_BIN="$BIN" API_FUZZ_STARTED="$started"
else
  python3 -c "$API_FUZZ_LO_UP" || { echo "FAIL: cannot bring up lo in the network namespace" >&2; exit 1; }
fi

# ---------------------------------------------------------------------------------------------
# The fuzzing itself (in the namespace when there is one).
# ---------------------------------------------------------------------------------------------
PY=$API_FUZZ_PY
BIN=$API_FUZZ_BIN
started=$API_FUZZ_STARTED
MAX_EXAMPLES=${API_FUZZ_MAX_EXAMPLES:-50}
PHASES=${API_FUZZ_PHASES:-examples,coverage,fuzzing,stateful}
SEED=${API_FUZZ_SEED-1}
RUNS=${API_FUZZ_RUNS:-operator device}
EXCLUDE=${API_FUZZ_EXCLUDE:-}
WAHA_PATHS=${API_FUZZ_WAHA_PATHS-'^/api/v1/waha/|^/api/devices/\{id\}/qr$'}
RUN_TIMEOUT=${API_FUZZ_RUN_TIMEOUT:-80}
CHECKS=not_a_server_error
for c in $(printf '%s' "${API_FUZZ_CHECKS-status_code_conformance,response_schema_conformance}" | tr ',' ' '); do
  case ",none,$CHECKS," in *",$c,"*) ;; *) CHECKS="$CHECKS,$c" ;; esac
done

# Nothing of the caller's configuration reaches wapim (a CI job's WAPIM_DATABASE__URL, token,
# OTLP endpoint, proxies, ...).
for var in $(compgen -e | grep -iE '^(WAPIM_|OTEL_|(http|https|all|no)_proxy$)' || true); do unset "$var"; done
# schemathesis talks to loopback only; anything else it might try goes to a closed loopback proxy.
SANDBOX_ENV=(NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9
  http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9)

WORK=$(mktemp -d /tmp/wapim-api-fuzz.XXXXXX)
LOG="$WORK/wapim.log"
WAPIM_PID=""
status=1
summary=""

cleanup() {
  # The log's tail before wapim is stopped (its shutdown lines would push out what matters).
  if [ "$status" != 0 ] && [ -s "$LOG" ]; then
    if grep -q ' ERROR ' <(sed 's/\x1b\[[0-9;]*m//g' "$LOG"); then
      echo "== api-fuzz: wapim's last ERROR lines"
      sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep ' ERROR ' | tail -n 10
    fi
    echo "== api-fuzz: last 50 lines of wapim's log ($LOG)"
    tail -n 50 "$LOG" | sed 's/\x1b\[[0-9;]*m//g'
  fi
  if [ -n "$WAPIM_PID" ] && kill -0 "$WAPIM_PID" 2>/dev/null; then
    kill "$WAPIM_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$WAPIM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$WAPIM_PID" 2>/dev/null || true
    wait "$WAPIM_PID" 2>/dev/null || true
  fi
  echo "${summary:-api-fuzz: FAIL (stopped early)} in $(( $(date +%s) - started )) s"
  if [ "$status" = 0 ] && [ "${API_FUZZ_KEEP:-}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "kept: $WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "FAIL: $*" >&2
  summary="api-fuzz: FAIL ($*)"
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wapim's environment: a throwaway database, its own port, WAHA nowhere.
export WAPIM_DATABASE__URL="sqlite://$WORK/wapim.db"
export WAPIM_HTTP__HOST=127.0.0.1 WAPIM_HTTP__PORT=0 WAPIM_HTTP__PUBLIC_URL=
export WAPIM_WAHA__URL="http://127.0.0.1:$(free_port)" WAPIM_WAHA__WEBHOOK_URL=
export WAPIM_WAHA__TIMEOUT_SECS=5 WAPIM_WAHA__REQUEST_TIMEOUT_SECS=5
export WAPIM_WEBHOOKS__ALLOW_PRIVATE=false
# POST /api/messages with is_queue false waits for the send (WAHA is closed): not 15 s each.
export WAPIM_LIMITS__IMMEDIATE_SEND_TIMEOUT_SECS=1
export WAPIM_LOG__LEVEL=${API_FUZZ_LOG_LEVEL:-info}

OPERATOR_TOKEN=$("$BIN" reset-token 2>>"$LOG") || die "wapim reset-token failed (see the log)"
[ ${#OPERATOR_TOKEN} -ge 32 ] || die "wapim reset-token printed no token"

echo "== api-fuzz: starting $BIN ($WORK)"
"$BIN" >>"$LOG" 2>&1 &
WAPIM_PID=$!
PORT=""
for _ in $(seq 300); do
  kill -0 "$WAPIM_PID" 2>/dev/null || die "wapim exited at start-up"
  PORT=$(sed -n 's#^ *API: *http://127\.0\.0\.1:\([0-9][0-9]*\)/api.*#\1#p' "$LOG" | head -n 1)
  if [ -n "$PORT" ] && curl -fsS --noproxy '*' -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health/live" 2>/dev/null; then
    break
  fi
  PORT=""
  sleep 0.1
done
[ -n "$PORT" ] || die "wapim did not come up within 30 s"
BASE="http://127.0.0.1:$PORT"
echo "wapim is up on $BASE (pid $WAPIM_PID)"

# api METHOD PATH [BODY] [HEADER...]: the response body; fails on a non-2xx answer.
api() {
  local method=$1 path=$2 data=()
  [ -n "${3:-}" ] && data=(--data "$3")
  shift 3 || shift $#
  curl -fsS --noproxy '*' --max-time 10 -X "$method" "$BASE$path" \
    -H 'Content-Type: application/json' "$@" "${data[@]}"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][sys.argv[1]])' "$1"; }

# The spec: the binary's own document, or API_FUZZ_SPEC. Kept as a file, checked, then fuzzed.
SPEC="$WORK/openapi.json"
if [ -n "${API_FUZZ_SPEC:-}" ]; then
  [ -f "$API_FUZZ_SPEC" ] || die "API_FUZZ_SPEC=$API_FUZZ_SPEC is not a file"
  case "$API_FUZZ_SPEC" in *.yaml|*.yml) SPEC="$WORK/openapi.yaml" ;; esac
  cp "$API_FUZZ_SPEC" "$SPEC"
  spec_from=$API_FUZZ_SPEC
else
  code=$(curl -sS --noproxy '*' --max-time 10 -o "$SPEC" -w '%{http_code}' "$BASE/api/openapi.json" || true)
  [ "$code" = 200 ] || die "GET /api/openapi.json answered ${code:-nothing}: is $BIN built from a tree with the spec? (API_FUZZ_SPEC=file to use another)"
  spec_from="GET /api/openapi.json"
fi
ops=$("$PY" - "$SPEC" <<'PYEOF'
import json, sys

import yaml  # a schemathesis dependency

text = open(sys.argv[1], encoding="utf-8").read()
try:
    doc = json.loads(text)
except ValueError:
    doc = yaml.safe_load(text)
if not str(doc.get("openapi", "")).startswith("3."):
    sys.exit(f"not an OpenAPI 3 document (openapi: {doc.get('openapi')!r})")
methods = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
print(sum(1 for item in (doc.get("paths") or {}).values() for m in item if m in methods))
PYEOF
) || die "the spec ($spec_from) is not a usable OpenAPI 3 document"
[ "$ops" -gt 0 ] || die "the spec ($spec_from) has no operations"
echo "spec: $spec_from, OpenAPI 3, $ops operations"

# Data for device-scoped routes: one device fuzzed by the operator run, one whose credentials
# the device run uses (made before any fuzzing; checked and, if the operator run broke it, made
# again before the device run).
AUTH_OP=(-H "Authorization: Bearer $OPERATOR_TOKEN")
DEVICE_ID="" DEVICE_SESSION="" DEVICE_SECRET=""
new_device() {
  local made
  made=$(api POST /api/devices "{\"name\": \"api-fuzz $1\", \"phone_number\": \"0811000000$2\"}" "${AUTH_OP[@]}") \
    || return 1
  DEVICE_ID=$(json_field id <<<"$made")
  DEVICE_SESSION=$(json_field session_id <<<"$made")
  DEVICE_SECRET=$(json_field secret_token <<<"$made")
}
# new_message SESSION HEADER...: the id of a message queued for 2099 (so routes under
# /api/messages/{id} have one to find).
new_message() {
  local session=$1
  shift
  api POST /api/messages "{\"session_id\": \"$session\", \"recipient\": \"0811000000201\", \"message_type\": \"text\", \"message\": \"api-fuzz\", \"is_queue\": true, \"schedule_at\": \"2099-01-01 00:00:00\"}" "$@" \
    | json_field id
}
new_device target 101 || die "POST /api/devices as the operator failed"
TARGET_ID=$DEVICE_ID TARGET_SESSION=$DEVICE_SESSION TARGET_SECRET=$DEVICE_SECRET
TARGET_MESSAGE=$(new_message "$TARGET_SESSION" "${AUTH_OP[@]}") \
  || die "POST /api/messages as the operator failed"
new_device device 102 || die "POST /api/devices (the device run's device) failed"
echo "devices: #$TARGET_ID ($TARGET_SESSION) for the operator run, #$DEVICE_ID ($DEVICE_SESSION) for the device run"

# Keeps a run's own device usable: restored after a DELETE, its secret token put back after a
# PUT/PATCH. Every repair is logged to $API_FUZZ_HOOK_LOG.
cat >"$WORK/hooks.py" <<'PYEOF'
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

BASE = os.environ["API_FUZZ_BASE"]
TOKEN = os.environ["API_FUZZ_OPERATOR_TOKEN"]
DEVICE = os.environ["API_FUZZ_HOOK_DEVICE"]
SECRET = os.environ["API_FUZZ_HOOK_SECRET"]
LOG = os.environ["API_FUZZ_HOOK_LOG"]
PATH = re.compile(r"^/api/devices/0*(\d+)/?$")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _operator(method, path, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with OPENER.open(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return repr(e)


@schemathesis.hook
def after_call(context, case, response):
    if not 200 <= response.status_code < 300:
        return
    request = response.request
    match = PATH.match(urllib.parse.urlsplit(request.url).path)
    if not match or match.group(1) != DEVICE:
        return
    if request.method == "DELETE":
        what, got = "restored", _operator("POST", f"/api/devices/{DEVICE}/restore")
    elif request.method in ("PUT", "PATCH"):
        what, got = "secret token put back", _operator("PATCH", f"/api/devices/{DEVICE}", {"secret_token": SECRET})
    else:
        return
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(f"{request.method} {request.url} answered {response.status_code}: device {DEVICE} {what} ({got})\n")
PYEOF

exclude=()
[ -n "$EXCLUDE" ] && exclude+=(--exclude-path-regex "$EXCLUDE")
[ "$API_FUZZ_IN_NETNS" = 1 ] || exclude+=(--exclude-path-regex '^/api/waha-servers')
seed=()
[ -n "$SEED" ] && seed=(--seed "$SEED")
report=()
if [ -n "${API_FUZZ_REPORT_DIR:-}" ]; then
  mkdir -p "$API_FUZZ_REPORT_DIR"
  report=(--report junit --report-dir "$API_FUZZ_REPORT_DIR")
fi
read -r -a extra <<<"${API_FUZZ_ARGS:-}"

# fuzz NAME DEVICE MESSAGE SESSION SECRET HEADER...: one schemathesis run; its output goes to the terminal
# and to $WORK/NAME.out.
results=()
failed=0
fuzz() {
  local name=$1 id=$2 message=$3 session=$4 secret=$5
  shift 5
  {
    echo "hooks = '$WORK/hooks.py'"
    echo
    echo "[dictionaries.ids]"
    echo "values = [$id, $message]"
    echo "[dictionaries.sessions]"
    echo "values = [\"$session\"]"
    echo "[dictionaries.phones]"
    echo "values = [\"0811000000201\", \"6281100000202\", \"+62 811-0000-0203\"]"
    echo "[dictionaries.times]"
    echo "values = [\"2099-01-01 09:00:00\", \"2099-01-01T09:00:00+07:00\"]"
    echo "[dictionaries.urls]"
    echo "values = [\"http://127.0.0.1:9/api-fuzz\"]"
    echo
    echo "[parameters]"
    echo "\"path.id\" = { dictionary = \"ids\", probability = 0.5 }"
    echo "\"query.device_id\" = { dictionary = \"ids\", probability = 0.5 }"
    echo "\"session_id\" = { dictionary = \"sessions\", probability = 0.5 }"
    echo "\"query.session\" = { dictionary = \"sessions\", probability = 0.5 }"
    echo "\"body.session_id\" = { dictionary = \"sessions\", probability = 0.5 }"
    echo "\"body.items[*].session_id\" = { dictionary = \"sessions\", probability = 0.5 }"
    for key in path.phone query.phone query.recipient query.sender body.recipient body.phone \
               body.phone_number body.auto_forward_number "body.items[*].recipient"; do
      echo "\"$key\" = { dictionary = \"phones\", probability = 0.5 }"
    done
    for key in body.schedule_at "body.items[*].schedule_at"; do
      echo "\"$key\" = { dictionary = \"times\", probability = 0.5 }"
    done
    for key in body.webhook_url body.file_url "body.items[*].file_url"; do
      echo "\"$key\" = { dictionary = \"urls\", probability = 0.5 }"
    done
    if [ -n "$WAHA_PATHS" ]; then
      echo
      echo "# WAHA is down: these routes answer 502/504 by design; 500 and 503 still fail."
      echo "[[operations]]"
      echo "include-path-regex = '$WAHA_PATHS'"
      echo "checks.not_a_server_error.expected-statuses = [\"1XX\", \"2XX\", \"3XX\", \"4XX\", 502, 504]"
    fi
  } >"$WORK/$name.toml"
  local junit=()
  [ ${#report[@]} -gt 0 ] && junit=("${report[@]}" --report-junit-path "$name.xml")
  echo "== api-fuzz: $name run (checks $CHECKS, $MAX_EXAMPLES examples, phases $PHASES)"
  local rc=0
  (cd "$WORK" && env "${SANDBOX_ENV[@]}" API_FUZZ_BASE="$BASE" API_FUZZ_OPERATOR_TOKEN="$OPERATOR_TOKEN" \
      API_FUZZ_HOOK_DEVICE="$id" API_FUZZ_HOOK_SECRET="$secret" API_FUZZ_HOOK_LOG="$WORK/$name.hook.log" \
      timeout --kill-after=5 "$RUN_TIMEOUT" "$PY" -m schemathesis.cli \
      --config-file "$WORK/$name.toml" --no-color \
      run "$SPEC" --origin "$BASE" "$@" \
      --checks "$CHECKS" --phases "$PHASES" --max-examples "$MAX_EXAMPLES" "${seed[@]}" \
      --workers 1 --request-timeout 10 --generation-with-security-parameters false \
      --generation-database none --output-truncate true \
      "${exclude[@]}" "${junit[@]}" "${extra[@]}") 2>&1 | tee "$WORK/$name.out" || rc=$?
  local cases repairs=""
  cases=$(grep -A1 '^Test cases:' "$WORK/$name.out" | tail -n 1 | sed 's/^ *//' || true)
  [ -f "$WORK/$name.hook.log" ] && repairs=", device repaired $(wc -l <"$WORK/$name.hook.log") times"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    results+=("$name: over ${RUN_TIMEOUT} s")
    failed=1
  elif [ "$rc" != 0 ]; then
    results+=("$name: FAILED (${cases:-no test cases}$repairs)")
    failed=1
  else
    results+=("$name: ${cases:-ok}$repairs")
  fi
  kill -0 "$WAPIM_PID" 2>/dev/null || die "wapim died during the $name run"
}

for run in $RUNS; do
  case $run in
    operator)
      fuzz operator "$TARGET_ID" "$TARGET_MESSAGE" "$TARGET_SESSION" "$TARGET_SECRET" "${AUTH_OP[@]}" ;;
    device)
      auth_dev=(-H "X-Session-Id: $DEVICE_SESSION" -H "X-Session-Secret-Token: $DEVICE_SECRET")
      if ! api GET /api/messages '' "${auth_dev[@]}" >/dev/null 2>&1; then
        echo "note: the device run's credentials stopped working during the operator run: a new device"
        new_device device-2 103 || die "POST /api/devices (a new device for the device run) failed"
        auth_dev=(-H "X-Session-Id: $DEVICE_SESSION" -H "X-Session-Secret-Token: $DEVICE_SECRET")
      fi
      message=$(new_message "$DEVICE_SESSION" "${auth_dev[@]}") || die "POST /api/messages as the device failed"
      fuzz device "$DEVICE_ID" "$message" "$DEVICE_SESSION" "$DEVICE_SECRET" "${auth_dev[@]}" ;;
    *) die "unknown run in API_FUZZ_RUNS: $run" ;;
  esac
done

joined=$(IFS=';'; echo "${results[*]}" | sed 's/;/; /g')
if [ "$failed" = 0 ]; then
  status=0
  summary="api-fuzz: PASS ($joined; $ops operations, schemathesis $SCHEMATHESIS_VERSION, checks $CHECKS, seed ${SEED:-random})"
else
  summary="api-fuzz: FAIL ($joined; $ops operations, schemathesis $SCHEMATHESIS_VERSION, checks $CHECKS, seed ${SEED:-random})"
fi
exit "$status"
