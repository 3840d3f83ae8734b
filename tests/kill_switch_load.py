"""Kill-switch status reads under load while an activation is in flight: the concurrency
check of tier 4 and the latency benchmark (benchmarks/activation_under_load.py) share it.

The reads go over plain asyncio streams, one keep-alive HTTP/1.1 connection per reader: a
pooled client spends more time choosing connections than the service spends answering."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import attrs

STATUS_PATH = "/execution/kill-switch/status"


@attrs.frozen
class StatusRead:
    sent: float  # perf_counter just before the request was written
    active: bool


@attrs.frozen
class ActivationUnderLoad:
    activation: dict
    sent: float
    answered: float
    reads: tuple[StatusRead, ...]

    @property
    def latency(self) -> float:
        return self.answered - self.sent


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str, host: str
) -> dict:
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    if not status_line.startswith("HTTP/1.1 200"):
        raise AssertionError(f"{method} {path}: {status_line}")
    length = next(
        int(value)
        for name, _, value in (h.partition(":") for h in headers)
        if name.lower() == "content-length"
    )
    return json.loads(await reader.readexactly(length))


async def status_reads_during_activation(
    url: str, *, reads: int = 1000, connections: int = 100
) -> ActivationUnderLoad:
    """`reads` status reads over `connections` connections at once; once a quarter of them
    are answered, an activation is sent on a connection of its own, so it is in flight while
    reads go on."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    done: list[StatusRead] = []
    quarter = asyncio.Event()
    left = iter(range(reads))

    async def reader_connection() -> None:
        stream, writer = await asyncio.open_connection(host, port)
        try:
            for _ in left:
                sent = time.perf_counter()
                answer = await _exchange(stream, writer, "GET", STATUS_PATH, parts.netloc)
                done.append(StatusRead(sent, answer["active"]))
                if len(done) >= reads // 4:
                    quarter.set()
        finally:
            writer.close()

    async def activate() -> tuple[dict, float, float]:
        stream, writer = await asyncio.open_connection(host, port)
        try:
            await quarter.wait()
            sent = time.perf_counter()
            answer = await _exchange(
                stream, writer, "POST", "/execution/kill-switch/activate", parts.netloc
            )
            return answer, sent, time.perf_counter()
        finally:
            writer.close()

    activation, *_ = await asyncio.gather(
        activate(), *(reader_connection() for _ in range(connections))
    )
    body, sent, answered = activation
    return ActivationUnderLoad(body, sent, answered, tuple(done))
