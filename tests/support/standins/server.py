"""What every stand-in does the same way: serve its WSGI app on a free port of 127.0.0.1 in the
background, and deliver notifications as providers do, again and again until answered 2xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

# How long a provider keeps delivering one notification here (real ones: a day or three).
DELIVERY_SECONDS = 30.0


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # a stand-in's requests are recorded by the stand-in, not printed


class StandInServer:
    """The server of one stand-in, and the threads that deliver its notifications: `stop()`
    ends both. The port is known from construction, so settings can be made before `start()`."""

    def __init__(self, wsgi: Callable[..., Any], name: str) -> None:
        self.stopping = threading.Event()
        self._server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._serving = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=name, daemon=True
        )
        self._deliveries: list[threading.Thread] = []

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._serving.is_alive():
            self._server.shutdown()
        self._server.server_close()
        for thread in self._deliveries:
            thread.join(timeout=5)

    def deliver(self, attempt: Callable[[], bool], done: Callable[[], None] | None = None) -> None:
        """Call `attempt` (one POST; True once answered 2xx) in the background, with a backoff
        from 50 ms to 1 s, until it succeeds, the stand-in stops, or DELIVERY_SECONDS pass."""

        def run() -> None:
            deadline, pause = time.monotonic() + DELIVERY_SECONDS, 0.05
            try:
                while not self.stopping.is_set() and time.monotonic() < deadline:
                    if attempt():
                        return
                    self.stopping.wait(pause)
                    pause = min(pause * 2, 1.0)
            finally:
                if done is not None:
                    done()

        thread = threading.Thread(target=run, daemon=True)
        self._deliveries.append(thread)
        thread.start()
