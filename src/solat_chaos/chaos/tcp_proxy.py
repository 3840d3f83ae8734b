"""A TCP fault proxy on loopback: the failures respx cannot show.

`TcpFaultProxy` listens on 127.0.0.1 and relays each connection to an upstream loopback
server (the SimBroker's HTTP app under `LoopbackServer`). It reads just enough HTTP/1.1 to
find where each request and each answer ends, so a fault hits one chosen request — by method
and path — even on a kept-alive connection:

- `reset`: the connection is reset (RST) before the request reaches the broker, or, with
  `after=True`, after the broker acted on it and before the answer leaves;
- `hang`: half-open — the request goes nowhere, the connection stays up and nothing comes
  back, until the client gives up (its timeout) or the proxy stops;
- `trickle`: the answer arrives a few bytes at a time, with a pause between them;
- `close_mid_body`: the headers and half the body arrive, then the connection is closed.

Every wait is bounded (`io_timeout`, `hang_limit`) and `stop()` ends every connection, so a
test can never hang on the proxy; `wait_for_faults()` tells it when a fault has been met.
Only loopback addresses are accepted.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import itertools
import select
import socket
import struct
import threading
import time
from typing import Any

import attrs

from solat_chaos.chaos.injected import InjectedFault

LOOPBACK = "127.0.0.1"
Match = str | None  # a request method or path to match; None matches any
Count = int | None  # how many matching requests a fault takes; None: every one
_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class ProxyFault(enum.StrEnum):
    RESET = "reset"
    HANG = "hang"
    TRICKLE = "trickle"
    CLOSE_MID_BODY = "close_mid_body"


# The faults that can strike before the request is relayed (the broker never sees it).
_BEFORE_BROKER = (ProxyFault.RESET, ProxyFault.HANG)


@attrs.frozen
class FaultedRequest:
    """One request a fault was applied to, in the order they happened."""

    fault: ProxyFault
    method: str
    path: str
    reached_broker: bool


@attrs.define
class _Rule:
    name: int
    fault: ProxyFault
    method: str | None
    path: str | None
    remaining: int | None
    reached_broker: bool = False
    chunk: int = 8
    pause: float = 0.001

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or path.endswith(self.path)
        )


@attrs.frozen
class _Message:
    head: bytes
    body: bytes
    close_after: bool  # the sender will close the connection after this message

    @property
    def raw(self) -> bytes:
        return self.head + self.body


class _ConnectionGone(Exception):
    """The peer closed (or reset) the connection before a whole message arrived."""


class _Reader:
    """Buffered reads from a socket, each bounded by the socket's timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        if _QUICKACK is not None:
            # Acknowledge at once: a peer that writes a head and a body separately with
            # Nagle on would otherwise wait ~40 ms on our delayed ACK for every answer.
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def at_eof(self) -> bool:
        return not self.buffer and not self._more()

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > _MAX_HEAD or not self._more():
                raise _ConnectionGone(f"no {marker!r} before the connection ended")
        end = self.buffer.index(marker) + len(marker)
        taken, self.buffer = self.buffer[:end], self.buffer[end:]
        return taken

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._more():
                raise _ConnectionGone(f"{n - len(self.buffer)} bytes missing")
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def to_eof(self) -> bytes:
        while self._more():
            pass
        taken, self.buffer = self.buffer, b""
        return taken

    def chunked(self) -> bytes:
        raw = b""
        while True:
            size_line = self.until(b"\r\n")
            raw += size_line
            if int(size_line.split(b";")[0].strip() or b"0", 16) == 0:
                break
            raw += self.exactly(int(size_line.split(b";")[0].strip(), 16) + 2)
        while (line := self.until(b"\r\n")) != b"\r\n":  # trailers, then an empty line
            raw += line
        return raw + line


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def _read_request(reader: _Reader) -> tuple[_Message, str, str] | None:
    if reader.at_eof():
        return None
    head = reader.until(_HEAD_END)
    start, fields = _headers(head)
    method, _, rest = start.partition(" ")
    target = rest.rpartition(" ")[0]
    body = reader.exactly(int(fields.get("content-length", "0")))
    close = fields.get("connection", "").lower() == "close"
    return _Message(head, body, close), method.upper(), target.split("?", 1)[0]


def _read_response(reader: _Reader, request_method: str) -> _Message:
    head = reader.until(_HEAD_END)
    start, fields = _headers(head)
    status = int(start.split(" ", 2)[1])
    close = fields.get("connection", "").lower() == "close"
    if request_method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        body = reader.chunked()
    elif "content-length" in fields:
        body = reader.exactly(int(fields["content-length"]))
    else:
        body, close = reader.to_eof(), True
    return _Message(head, body, close)


def _check_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the TCP fault proxy only talks to loopback addresses, not {host!r}")


class TcpFaultProxy:
    """Relays 127.0.0.1:`port` (0: a free port) to `upstream_host:upstream_port`, applying
    the faults armed on it. Use it as a context manager, or `start()` and `stop()`."""

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = LOOPBACK,
        *,
        port: int = 0,
        io_timeout: float = 5.0,
        hang_limit: float = 5.0,
    ) -> None:
        _check_loopback(upstream_host)
        self.upstream = (upstream_host, upstream_port)
        self.host = LOOPBACK
        self.port = port
        self.io_timeout = io_timeout
        self.hang_limit = hang_limit
        self.faulted: list[FaultedRequest] = []
        self._rules: list[_Rule] = []
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._fault_met = threading.Condition(self._lock)  # `faulted` grew
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- life ------------------------------------------------------------------------------

    def start(self) -> TcpFaultProxy:
        listener = socket.create_server((self.host, self.port), backlog=16)
        listener.settimeout(0.05)  # so the accept loop sees `stop()` promptly
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept_loop, "tcp-fault-proxy")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End every connection and thread; TimeoutError if a thread outlives `timeout`."""
        with self._lock:
            # Under the lock: no socket can be tracked after this, so none is missed below.
            self._stopping.set()
            for sock in list(self._sockets):
                _close(sock)
        deadline = time.monotonic() + timeout
        # The accept loop (the first thread) spawns the others: once it has ended, the list
        # of threads is complete.
        for thread in self._threads[:1]:
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread in self._threads[1:]:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise TimeoutError(f"proxy threads still running after {timeout}s: {alive}")

    def wait_for_faults(self, count: int = 1, timeout: float = 5.0) -> list[FaultedRequest]:
        """Block until `count` requests have met their fault (a hang has begun, a reset is
        under way), then return `faulted`; TimeoutError after `timeout` seconds. A client's
        request is in flight once sent, so this is how a test knows the proxy holds it."""
        with self._fault_met:
            if not self._fault_met.wait_for(lambda: len(self.faulted) >= count, timeout):
                raise TimeoutError(f"{len(self.faulted)} of {count} faults met in {timeout}s")
            return list(self.faulted)

    def __enter__(self) -> TcpFaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------

    def reset(
        self, method: Match = None, path: Match = None, *, count: Count = 1, after: bool = False
    ) -> InjectedFault:
        """Reset the connection (RST) of the next `count` matching requests: before the broker
        sees them, or, with `after`, once it has acted on them (the answer is lost)."""
        return self._arm(ProxyFault.RESET, method, path, count, reached_broker=after)

    def hang(self, method: Match = None, path: Match = None, *, count: Count = 1) -> InjectedFault:
        """Half-open: the next `count` matching requests are swallowed, the broker never sees
        them, and the connection stays up and silent until the client's timeout (or
        `hang_limit`)."""
        return self._arm(ProxyFault.HANG, method, path, count)

    def trickle(
        self, method: Match = None, path: Match = None, *, count: Count = 1, **pace: Any
    ) -> InjectedFault:
        """The answers to the next `count` matching requests arrive `chunk` bytes at a time
        (default 8), `pause` seconds apart (default 0.001): `trickle(chunk=1, pause=0.01)`."""
        return self._arm(ProxyFault.TRICKLE, method, path, count, **pace)

    def close_mid_body(
        self, method: Match = None, path: Match = None, *, count: Count = 1
    ) -> InjectedFault:
        """The answers to the next `count` matching requests stop halfway through the body
        and the connection closes. The broker has acted on the request."""
        return self._arm(ProxyFault.CLOSE_MID_BODY, method, path, count, reached_broker=True)

    def heal(self) -> None:
        """Disarm every fault; connections already hanging are released when they time out."""
        with self._lock:
            self._rules.clear()

    def _arm(
        self,
        fault: ProxyFault,
        method: Match,
        path: Match,
        count: Count,
        **options: Any,
    ) -> InjectedFault:
        if count is not None and count < 1:
            raise ValueError(f"count must be >= 1 or None, not {count!r}")
        rule = _Rule(next(self._names), fault, method and method.upper(), path, count, **options)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)

        def disarm() -> None:
            with self._lock:
                if rule in self._rules:
                    self._rules.remove(rule)

        where = f"{method or '*'} {path or '*'}"
        return InjectedFault(f"TCP {fault} on {where} x{count or 'all'}", disarm)

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    self.faulted.append(
                        FaultedRequest(rule.fault, method, path, rule.reached_broker)
                    )
                    self._fault_met.notify_all()
                    return rule
        return None

    # -- relaying --------------------------------------------------------------------------

    def _spawn(self, target, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        """Register `sock` so `stop()` closes it; a proxy that is stopping closes it now."""
        sock.settimeout(self.io_timeout)
        with self._lock:
            if self._stopping.is_set():
                _close(sock)
                raise ConnectionAbortedError("the proxy is stopping")
            self._sockets.add(sock)
        return sock

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
                tracked = self._track(client)
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed, or the proxy is stopping
            # Threads are only spawned from here, and this loop ends once stop() begins,
            # so stop() joins every one of them.
            self._spawn(self._relay, "tcp-fault-proxy-connection", tracked)

    def _relay(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            from_client = _Reader(client)
            from_upstream: _Reader | None = None
            while not self._stopping.is_set():
                request = _read_request(from_client)
                if request is None:
                    return
                message, method, path = request
                rule = self._take_rule(method, path)
                if rule is not None and rule.fault in _BEFORE_BROKER and not rule.reached_broker:
                    self._fail(client, rule)
                    return
                if upstream is None:
                    upstream = self._track(socket.create_connection(self.upstream))
                    from_upstream = _Reader(upstream)
                upstream.sendall(message.raw)
                assert from_upstream is not None
                answer = _read_response(from_upstream, method)
                if rule is None or rule.fault is ProxyFault.TRICKLE:
                    self._send(client, answer.raw, rule)
                else:
                    self._fail(client, rule, answer)
                    return
                if answer.close_after or message.close_after:
                    return
        except (OSError, _ConnectionGone, ValueError):
            return  # a peer went away or spoke garbage: this connection is over
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._sockets.discard(sock)
                    _close(sock)

    def _fail(self, client: socket.socket, rule: _Rule, answer: _Message | None = None) -> None:
        """End the connection the way `rule` says; `answer` is the broker's, if it acted."""
        if rule.fault is ProxyFault.RESET:
            _reset(client)
        elif rule.fault is ProxyFault.HANG:
            self._hang(client)
        elif rule.fault is ProxyFault.CLOSE_MID_BODY and answer is not None:
            client.sendall(answer.head + answer.body[: len(answer.body) // 2])

    def _send(self, client: socket.socket, data: bytes, rule: _Rule | None) -> None:
        if rule is None:
            client.sendall(data)
            return
        for start in range(0, len(data), rule.chunk):
            client.sendall(data[start : start + rule.chunk])
            if self._stopping.wait(rule.pause):
                return

    def _hang(self, client: socket.socket) -> None:
        """Keep the connection open and silent until the client leaves, the proxy stops or
        `hang_limit` passes."""
        deadline = time.monotonic() + self.hang_limit
        while not self._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([client], [], [], 0.05)
            if readable and not client.recv(65536):
                return  # the client gave up and closed


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
