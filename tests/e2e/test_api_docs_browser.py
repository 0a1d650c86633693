"""`/api/docs` renders in a browser that can reach nothing but 127.0.0.1, as on a machine
without internet: Swagger UI's files must come from the service itself (app/api/docs.py).

Headless Chromium (Debian's, as in test_checkout_browser.py) loads the page from the test
stack's gunicorn (the page needs no worker). Everything else is cut off two ways:
- `--proxy-server` sends every request that is not for a loopback address (Chromium never
  proxies those) to a local proxy that refuses it and writes down what was asked. With an
  explicit proxy Chromium neither falls back to a direct connection nor resolves the host
  itself, and the proxy environment variables of the machine are ignored.
- `--host-resolver-rules` makes every host name but 127.0.0.1 unresolvable, for anything that
  would not go through the proxy; `--force-webrtc-ip-handling-policy` keeps WebRTC's UDP
  from going around it.
So the test fails the same on a machine that has internet as on one that has none.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.support.browser import PAGE_TIMEOUT, chromium

pytestmark = pytest.mark.slow

# What Swagger UI drew: the document's title, and the operation blocks of one path.
RENDERED = """
const title = document.querySelector('.swagger-ui .info .title');
const orders = document.querySelectorAll(
    '.swagger-ui .opblock .opblock-summary-path[data-path="/api/v1/orders"]');
return title && orders.length ? {title: title.textContent, orders: orders.length} : null;
"""
RESOURCES = "return performance.getEntriesByType('resource').map(entry => entry.name);"


class RefusingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy on 127.0.0.1 that refuses every request and keeps its first line
    (`CONNECT cdn.example:443 HTTP/1.1`, `GET http://... HTTP/1.1`)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), _Refuse)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Refuse(socketserver.StreamRequestHandler):
    server: RefusingProxy

    def handle(self) -> None:
        self.server.asked.append(self.rfile.readline(4096).decode("latin-1").strip())
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def proxy() -> Iterator[RefusingProxy]:
    server = RefusingProxy()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def offline_browser(proxy: RefusingProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium")
    offline = (
        f"--proxy-server={proxy.url}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    )
    with chromium(profile, profile / "chromedriver.log", offline) as driver:
        yield driver


def test_the_browser_reaches_nothing_but_localhost(offline_browser: Any, proxy: RefusingProxy) -> None:
    """The cut-off itself: a page on the internet does not load, and the proxy was asked for it."""
    from selenium.common.exceptions import WebDriverException

    with pytest.raises(WebDriverException, match="ERR_"):
        offline_browser.get("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css")
    assert any("cdn.jsdelivr.net" in line for line in proxy.asked), proxy.asked


def test_api_docs_render_swagger_ui_with_only_localhost_reachable(
    stack: Stack, offline_browser: Any, proxy: RefusingProxy
) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    asked_before = len(proxy.asked)
    offline_browser.get(stack.url("/api/docs"))
    try:
        rendered = WebDriverWait(offline_browser, PAGE_TIMEOUT).until(
            lambda driver: driver.execute_script(RENDERED)
        )
    except TimeoutException:
        raise AssertionError(
            "Swagger UI did not render /api/docs.\n"
            f"Asked of the outside while loading it: {proxy.asked[asked_before:]}\n"
            f"Loaded: {offline_browser.execute_script(RESOURCES)}\n"
            f"The browser shows:\n{offline_browser.page_source[:3000]}"
        ) from None
    assert "ordersaga" in rendered["title"], rendered
    assert rendered["orders"] >= 1, rendered
    loaded = offline_browser.execute_script(RESOURCES)
    assert loaded and all(url.startswith(f"{stack.base_url}/") for url in loaded), loaded
