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
WRK="${PORTAL_BENCH_WRK:-/usr/bin/wrk}"

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

# How long to wait, in all, for another apt-get, dpkg or unattended-upgrades (common just
# after a machine boots) to release the package lock, and how often to look again.
APT_LOCK_TIMEOUT="${PORTAL_APT_LOCK_TIMEOUT:-600}"
APT_LOCK_RETRY="${PORTAL_APT_LOCK_RETRY:-5}"
APT_LOG="${TMPDIR:-/tmp}/ensure-test-tools-apt.log"

# apt_get ARGS...: apt-get as root, output to APT_LOG. While the package lock is held it
# waits (apt's own DPkg::Lock::Timeout for the dpkg lock; looking again for the lists lock of
# `apt-get update`), at most APT_LOCK_TIMEOUT seconds, then stops with a clear message.
apt_get() {
    local deadline=$((SECONDS + APT_LOCK_TIMEOUT)) said="" remaining last
    last="$(mktemp)"
    while true; do
        remaining=$((deadline - SECONDS))
        [ "$remaining" -ge 0 ] || remaining=0
        if as_root apt-get -o "DPkg::Lock::Timeout=$remaining" "$@" >"$last" 2>&1; then
            cat "$last" >>"$APT_LOG"; rm -f "$last"
            return 0
        fi
        cat "$last" >>"$APT_LOG"
        if ! grep -qiE 'could not get lock|unable to acquire the dpkg frontend lock|unable to lock' "$last"; then
            rm -f "$last"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            rm -f "$last"
            fail "the package lock is still held after ${APT_LOCK_TIMEOUT}s: another apt-get, dpkg or unattended-upgrades is running (see $APT_LOG). Run this again when it has finished, or wait longer with PORTAL_APT_LOCK_TIMEOUT=SECONDS"
        fi
        [ -n "$said" ] || say "waiting for the package lock (another apt-get or dpkg is running; at most ${APT_LOCK_TIMEOUT}s)"
        said=1
        sleep "$APT_LOCK_RETRY"
    done
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
    [[ "$APT_LOCK_TIMEOUT" =~ ^[0-9]+$ ]] \
        || fail "PORTAL_APT_LOCK_TIMEOUT must be a whole number of seconds, not '$APT_LOCK_TIMEOUT'"
    export DEBIAN_FRONTEND=noninteractive
    local apt_install=(install -y -q --no-install-recommends "$package")
    : >"$APT_LOG"
    say "installing $package with apt-get (waiting up to ${APT_LOCK_TIMEOUT}s if another apt-get or dpkg holds the package lock)"
    if ! apt_get "${apt_install[@]}"; then
        say "apt-get install failed; running apt-get update and trying again"
        apt_get update -q || { tail -n 20 "$APT_LOG" >&2; fail "apt-get update failed"; }
        apt_get "${apt_install[@]}" \
            || { tail -n 20 "$APT_LOG" >&2; fail "apt-get install $package failed"; }
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
    bench) ensure_debian "$WRK" wrk ;;  # the load generator of benchmarks/bench_workspace.py
    *) fail "usage: $0 [test|bench]" ;;
esac
