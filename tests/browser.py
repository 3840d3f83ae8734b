"""Headless Chromium from the distribution's packages, for the tests that look at a page.

`.ci/run` installs Debian's `chromium`. Where no browser can be found, `chromium()` skips the
test and says why. The browser is run once per call, with a fresh profile directory, and
always ends: its own time budget for scripts, and a subprocess timeout behind that.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")


def chromium() -> str:
    """The path of a headless-capable Chromium, or skip the calling test."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium on this machine (looked for "
        + ", ".join(CANDIDATES)
        + "); `apt-get install chromium` provides it, as .ci/run does"
    )


def _run(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="solat-chromium-") as profile:
        return subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def dump_dom(url: str, *, script_budget_ms: int = 3000, timeout: float = 60.0) -> str:
    """The page's DOM after its scripts ran for `script_budget_ms` of virtual time."""
    done = _run([f"--virtual-time-budget={script_budget_ms}", "--dump-dom", url], timeout=timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"chromium --dump-dom {url} failed: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(
    url: str,
    path: Path,
    *,
    size: tuple[int, int] = (1200, 900),
    script_budget_ms: int = 3000,
    timeout: float = 60.0,
) -> Path:
    """A PNG of the page as a person would see it, written to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _run(
        [
            f"--virtual-time-budget={script_budget_ms}",
            f"--window-size={size[0]},{size[1]}",
            "--hide-scrollbars",
            f"--screenshot={path}",
            url,
        ],
        timeout=timeout,
    )
    if not path.exists():
        raise AssertionError(f"chromium --screenshot {url} wrote nothing: {done.stderr[-2000:]}")
    return path
