"""Headless Chromium for tests of the HTML reports (Debian's `chromium`, installed by
`make test`), with the network cut off: every host name fails to resolve."""

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after its scripts ran, with no network: every host name fails."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium")
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout
