"""Headless Chromium driven by Selenium, for the end-to-end tests that need a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scripts.browser import ensure_chromium

# As the machine's own probe starts it: without the background-networking flags, Chromium's
# connections to Google's hosts are refused by a closed network, many at a time.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
)
PAGE_TIMEOUT = 20


@contextmanager
def chromium(profile: Path, log_path: Path, extra_flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A Selenium WebDriver on Debian's Chromium (installed if missing and root), quit on exit."""
    try:
        binary, chromedriver = ensure_chromium()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=chromedriver, log_output=str(log_path))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
