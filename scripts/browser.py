"""A headless browser for the end-to-end tests: Debian's Chromium and its matching chromedriver.

Stdlib only, like scripts/servers.py. Nothing is downloaded from outside the distribution's
package archive: a browser build fetched by a tool of its own (`playwright install`, Selenium
Manager) would not work offline, and Debian's chromedriver always matches Debian's chromium.

    python -m scripts.browser      # prints the two paths, installing the packages if needed
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES = ("chromium", "chromium-driver")
BROWSER_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver",)


def _say(message: str) -> None:
    print(f"browser: {message}", file=sys.stderr, flush=True)


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def _found() -> tuple[str, str] | None:
    browser, driver = _which(BROWSER_NAMES), _which(DRIVER_NAMES)
    return (browser, driver) if browser and driver else None


def _apt_install(packages: tuple[str, ...]) -> None:
    """`apt-get install -y`; `apt-get update` only when the plain install fails (it is slow)."""
    what = " ".join(packages)
    if not (os.geteuid() == 0 and shutil.which("apt-get")):
        raise RuntimeError(
            f"chromium and chromedriver not found: install them (Debian: apt-get install {what})"
        )
    _say(f"chromium or chromedriver not found; running apt-get install -y {what}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *packages]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)

    result = run(install)
    if result.returncode != 0:
        run(["apt-get", "update", "-q"])
        result = run(install)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"apt-get install {what} failed: {' '.join(detail) or 'no output'}")


def ensure_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; installs Debian's packages when missing and we are root.

    Raises RuntimeError with a one-line message of what to install otherwise.
    """
    found = _found()
    if found:
        return found
    _apt_install(PACKAGES)
    found = _found()
    if not found:
        raise RuntimeError(
            f"chromium or chromedriver still not on PATH after apt-get install {' '.join(PACKAGES)}"
        )
    return found


def main() -> int:
    try:
        browser, driver = ensure_chromium()
    except RuntimeError as error:
        print(f"browser: {error}", file=sys.stderr)
        return 1
    print(browser)
    print(driver)
    return 0


if __name__ == "__main__":
    sys.exit(main())
