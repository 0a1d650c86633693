"""A lean HTTP/1.1 load generator: one process, one asyncio loop, C keep-alive connections.

Why not http.client in threads: on a two-core machine the load generator shares the cores
with the server it measures, and http.client's parsing plus 64 threads fighting over the GIL
would take most of a core. Here each request is a prepared byte string
and each response is read as a head plus Content-Length bytes, so the client costs a small
fraction of a core (`Result.client_cpu` says how much) and the figures are the server's.
"""

from __future__ import annotations

import asyncio
import re
import resource
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
CODE = re.compile(rb'"code":\s*"([a-z-]+)"')


@dataclass(frozen=True)
class Reply:
    status: int
    code: str  # "accepted" for a 2xx; otherwise the problem's `code`, or the status
    seconds: float
    done_at: float  # perf_counter() when the reply was read
    connection: int = 0  # which of the keep-alive connections carried it


@dataclass(frozen=True)
class Result:
    replies: list[Reply]
    started: float  # perf_counter() when the first request was sent
    wall: float  # seconds from the first request sent to the last reply read
    client_cpu: float  # CPU seconds the client itself used (user + system)

    @property
    def per_second(self) -> float:
        return len(self.replies) / self.wall


def request_bytes(
    method: str,
    path: str,
    host: str,
    body: bytes | None = None,
    token: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> bytes:
    """One keep-alive request, prepared once so that sending it costs the client nothing."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def classify(status: int, body: bytes) -> str:
    if status < 300:
        return "accepted"
    found = CODE.search(body)
    return found.group(1).decode() if found else str(status)


async def _connection(
    host: str, port: int, requests: Sequence[bytes], out: list[Reply], index: int = 0
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for raw in requests:
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = CONTENT_LENGTH.search(head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            status = int(head[9:12])
            done = time.perf_counter()
            out.append(Reply(status, classify(status, body), done - started, done, index))
    finally:
        writer.close()


async def _blast(host: str, port: int, requests: Sequence[bytes], connections: int) -> list[Reply]:
    out: list[Reply] = []
    shares = [requests[i::connections] for i in range(connections)]
    await asyncio.gather(*(_connection(host, port, share, out, i) for i, share in enumerate(shares) if share))
    return out


def blast(host: str, port: int, requests: Sequence[bytes], connections: int) -> Result:
    """Send every request over `connections` keep-alive connections, each waiting for its reply
    before sending the next (a closed loop: at most `connections` requests in flight)."""
    cpu_before = _cpu()
    started = time.perf_counter()
    replies = _run(_blast(host, port, requests, connections))
    return Result(replies, started, time.perf_counter() - started, _cpu() - cpu_before)


def _run(work: Coroutine[Any, Any, list[Reply]]) -> list[Reply]:
    """uvloop when installed (the dev extras have it): it cuts the client's own CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
