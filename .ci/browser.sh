#!/usr/bin/env bash
# Makes sure the dashboard's browser test (services/wapim/tests/it/browser.rs) can run: Debian's
# Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver; no browser is downloaded
# from anywhere else) and the OpenSSL headers that fantoccini's native-tls client builds against.
# Safe to run again: it installs only what is missing. Runs as root (CI, the developers' machines).
set -euo pipefail

log() { printf '[browser] %s\n' "$*" >&2; }

missing=()
[ -x /usr/bin/chromedriver ] || missing+=(chromium chromium-driver)
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${missing[*]}; run this script as root (it uses apt-get)"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  out=$(mktemp)
  # With recommends: they bring fonts-liberation, without which pages render no text.
  # shellcheck disable=SC2046
  if ! { apt-get update -qq && apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u); } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    log "apt-get failed"
    exit 1
  fi
  rm -f "$out"
fi

# /usr/bin/chromium is Debian's launcher script; its /etc/chromium.d snippets may print shell
# noise on stderr, hence 2>/dev/null.
log "$(/usr/bin/chromium --version 2>/dev/null)"
log "$(/usr/bin/chromedriver --version 2>/dev/null)"
