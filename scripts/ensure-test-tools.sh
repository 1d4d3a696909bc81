#!/usr/bin/env bash
# Make sure the browser-test tools are present: Debian's Chromium (/usr/bin/chromium) for
# Playwright, and the npm packages of package-lock.json (oidc-provider, axe-core, htmx.org);
# with `bench`, Debian's wrk for the load benchmark.
# Idempotent and fast when everything is already there; prints what it did; exits non-zero
# on failure. Called by `make test` (and CI). Playwright cannot download its own browser
# builds here, so the tests launch the system Chromium (tests/e2e/browser/conftest.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${PORTAL_TEST_CHROMIUM:-/usr/bin/chromium}"

say() { printf 'ensure-test-tools: %s\n' "$*"; }
fail() { printf 'ensure-test-tools: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        fail "need root (or sudo) to run: $*"
    fi
}

# ensure_debian BINARY PACKAGE: install PACKAGE with apt-get unless BINARY is executable.
ensure_debian() {
    local binary="$1" package="$2"
    if [ -x "$binary" ]; then
        say "$package present ($binary)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 \
        || fail "$binary is missing and apt-get is not available: install $package"
    export DEBIAN_FRONTEND=noninteractive
    local apt_install=(apt-get install -y -q --no-install-recommends "$package")
    local log="/tmp/ensure-test-tools-apt.log"
    say "installing $package with apt-get"
    if ! as_root "${apt_install[@]}" >"$log" 2>&1; then
        say "apt-get install failed; running apt-get update and trying again"
        as_root apt-get update -q >>"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; fail "apt-get update failed"; }
        as_root "${apt_install[@]}" >>"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; fail "apt-get install $package failed"; }
    fi
    [ -x "$binary" ] || fail "$package was installed but $binary is missing"
    say "installed $package"
}

ensure_node_modules() {
    command -v npm >/dev/null 2>&1 || fail "npm not found: install Node.js 20 or newer"
    cd "$ROOT"
    local modules="node_modules/.package-lock.json"
    if [ -f package-lock.json ]; then
        if [ -f "$modules" ] && [ ! package-lock.json -nt "$modules" ]; then
            say "node_modules up to date"
            return
        fi
        say "running npm ci"
        npm ci --no-audit --no-fund --loglevel=error || fail "npm ci failed"
    else
        if [ -d node_modules ] && [ ! package.json -nt node_modules ]; then
            say "node_modules present (no package-lock.json)"
            return
        fi
        say "running npm install (no package-lock.json)"
        npm install --no-audit --no-fund --loglevel=error || fail "npm install failed"
    fi
    # npm ci may keep the old mtime; mark node_modules as newer than the lock file.
    touch "$modules" 2>/dev/null || true
}

case "${1:-test}" in
    test) ensure_debian "$CHROMIUM" chromium; ensure_node_modules ;;
    bench) ensure_debian /usr/bin/wrk wrk ;;  # the load generator of benchmarks/bench_workspace.py
    *) fail "usage: $0 [test|bench]" ;;
esac
