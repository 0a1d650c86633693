"""The provider as the shop's workers reach it: a forwarding proxy that a fault switches to
answering 503, or to holding each request past the adapters' read timeout.

The workers' ORDERSAGA_PUBLIC_URL points here, so both their calls to the sandbox and the
sandbox's webhooks to the shop (whose callback URL the workers give) pass through it: while the
provider is down, neither way works, as with a real outage.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

PASS, FAIL, HANG = "pass", "5xx", "hang"
HANG_SECONDS = 12.0  # past the adapters' 10 s read timeout
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up (a worker killed, a request timed out) is part of the run."""


class ProviderProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = PASS
        self.session = threading.local()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ProviderProxy:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> requests.Response:
        if not hasattr(self.session, "http"):
            self.session.http = requests.Session()
        http: requests.Session = self.session.http
        return http.request(method, self.upstream + path, headers=headers, data=body, timeout=30)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == HANG:
                    time.sleep(HANG_SECONDS)
                if proxy.mode != PASS:
                    self._answer(503, b'{"error": "unavailable"}', {"Content-Type": "application/json"})
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    answer = proxy._forward(self.command, self.path, headers, body)
                except requests.RequestException:
                    self._answer(502, b"", {})
                    return
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                kept.pop("Content-Encoding", None)  # requests decoded the body
                self._answer(answer.status_code, answer.content, kept)

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
