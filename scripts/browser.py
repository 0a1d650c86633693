"""A headless browser for the end-to-end tests: Debian's Chromium and its matching chromedriver.

Stdlib only, like scripts/servers.py. Nothing is downloaded from outside the distribution's
package archive: a browser build fetched by a tool of its own (`playwright install`, Selenium
Manager) would not work offline, and Debian's chromedriver always matches Debian's chromium.

    python -m scripts.browser      # prints the two paths, installing the packages if needed
"""

from __future__ import annotations

import shutil
import sys

from scripts.servers import apt_install

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


def ensure_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; installs Debian's packages when missing and we are root.

    Raises RuntimeError with a one-line message of what to install otherwise.
    """
    found = _found()
    if found:
        return found
    apt_install(" ".join(PACKAGES), "chromium or chromedriver")
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
