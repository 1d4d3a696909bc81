"""scripts/ensure-test-tools.sh waits, a bounded time, for a package lock held by another
apt-get or dpkg (common just after a machine boots) instead of giving up at once.

apt-get here is a stand-in on PATH that behaves as apt-get does while another process holds
the lock (the message and exit status of apt 2.6), so the test neither needs root nor takes
the machine's real lock. (The real apt-get 2.6 waits with DPkg::Lock::Timeout: checked by
hand against a held /var/lib/dpkg/lock-frontend, then this message.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portal.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "ensure-test-tools.sh"

# The lock is held for the first N calls (N in the file "held"), then installs: creates the binary.
FAKE_APT_GET = """#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$FAKE_APT/calls"
held=$(cat "$FAKE_APT/held")
if [ "$held" -gt 0 ]; then
    echo $((held - 1)) >"$FAKE_APT/held"
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)"
    echo "E: Unable to lock directory /var/lib/apt/lists/"
    exit 100
fi
if [[ " $* " == *" install "* ]]; then
    printf '#!/bin/sh\\n' >"$FAKE_APT/wrk"
    chmod +x "$FAKE_APT/wrk"
fi
"""


def _run(tmp_path: Path, held: int, timeout: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("apt-get", FAKE_APT_GET), ("sudo", '#!/bin/sh\nexec "$@"\n')):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "held").write_text(str(held))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_APT": str(tmp_path),
           "TMPDIR": str(tmp_path), "PORTAL_BENCH_WRK": str(tmp_path / "wrk"),
           "PORTAL_APT_LOCK_TIMEOUT": timeout, "PORTAL_APT_LOCK_RETRY": "0"}
    # `bench` installs one Debian package and nothing from npm; `test` shares the same code.
    return subprocess.run(["bash", str(SCRIPT), "bench"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_a_held_package_lock_is_waited_for(tmp_path: Path) -> None:
    result = _run(tmp_path, held=3, timeout="600")
    calls = _calls(tmp_path)
    # Three refusals while the lock was held, then the install went through.
    assert len(calls) == 4, (calls, result.stderr)
    assert all(c.startswith("-o DPkg::Lock::Timeout=") for c in calls)
    assert calls[-1].split()[2:4] == ["install", "-y"]
    assert "waiting for the package lock" in result.stdout
    assert "installed wrk" in result.stdout
    assert (tmp_path / "wrk").exists()


def test_a_lock_held_too_long_stops_with_a_clear_message(tmp_path: Path) -> None:
    result = _run(tmp_path, held=1000, timeout="0")
    assert result.returncode == 1
    assert "the package lock is still held after 0s" in result.stderr
    assert "PORTAL_APT_LOCK_TIMEOUT" in result.stderr
    calls = _calls(tmp_path)
    assert calls == ["-o DPkg::Lock::Timeout=0 install -y -q --no-install-recommends wrk"]
    assert not (tmp_path / "wrk").exists()


def test_a_bad_timeout_is_named(tmp_path: Path) -> None:
    result = _run(tmp_path, held=0, timeout="soon")
    assert result.returncode == 1
    assert "PORTAL_APT_LOCK_TIMEOUT must be a whole number" in result.stderr
