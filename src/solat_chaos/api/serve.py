"""`solat-chaos serve`: the engine in production composition.

`OsFileSystem` on a data directory, `IGRestBroker` and `IGTradeStream` (the trade stream on
Lightstreamer, logged in with the REST session), a `Clock` (the system clock unless one is
handed in), uvicorn + Starlette. The broker is either any IG-dialect base URL (credentials
from IG_API_KEY, IG_IDENTIFIER, IG_PASSWORD and optionally IG_ACCOUNT_ID) or, by default, the
embedded simulated IG broker served on loopback in a process of its own, so that it outlives
an engine killed with SIGKILL: the data directory's `broker.json` names it, and a restart on
that directory finds it again. A graceful stop stops the embedded broker too.

Once listening, the service writes `service.json` (its URL and pid) into the data directory.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import attrs
import httpx
import uvicorn

from solat_chaos.api.app import create_app
from solat_chaos.api.test_clock import HeldClock, clock_routes
from solat_chaos.api.token import TOKEN_FILE, load_or_create_token, redacted
from solat_chaos.broker.ig_http import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.broker.ig_stream import IGTradeStream
from solat_chaos.engine.clock import Clock, SystemClock
from solat_chaos.engine.engine import Engine, EngineConfig
from solat_chaos.engine.filesystem import OsFileSystem, replace_atomically
from solat_chaos.engine.risk import RiskLimits

log = logging.getLogger("solat_chaos.serve")

BROKER_FILE = "broker.json"
SERVICE_FILE = "service.json"
CREDENTIALS = ("IG_API_KEY", "IG_IDENTIFIER", "IG_PASSWORD")
BROKER_START_TIMEOUT = 20.0


class ServeError(Exception):
    """The service cannot start as asked (a remote bind without --allow-remote, missing
    credentials, an embedded broker that did not come up)."""


@attrs.frozen
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    broker_url: str | None = None
    allow_remote: bool = False
    in_doubt_grace: float = 60.0
    limits: RiskLimits = RiskLimits()
    tick_interval: float = 1.0
    # Tests only: the engine's clock starts here and moves only through /test/clock/advance.
    test_clock: float | None = None


def check_bind(host: str, allow_remote: bool) -> None:
    """A non-loopback bind only with `allow_remote` (then every endpoint needs the token)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ServeError(
            f"refusing to bind {host}: not a loopback address; pass --allow-remote to serve "
            "other machines (every endpoint then needs the token)"
        )


# ---------------------------------------------------------------------------- the broker


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/session", timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def embedded_broker(data_dir: Path) -> tuple[str, int]:
    """The data directory's embedded broker (URL, pid): the one `broker.json` names while it
    answers, else a new `solat-chaos serve-broker` process on a free loopback port."""
    record = data_dir / BROKER_FILE
    try:
        known = json.loads(record.read_text())
        if _answers(known["url"]):
            return known["url"], int(known["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    command = [sys.executable, "-m", "solat_chaos.cli", "serve-broker"]
    with open(data_dir / "broker.log", "ab") as output:
        process = subprocess.Popen(
            [*command, "--fd", str(listener.fileno())],
            pass_fds=[listener.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own life: not killed with the engine's process group
        )
    listener.close()
    deadline = time.monotonic() + BROKER_START_TIMEOUT
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise ServeError(f"the embedded broker did not start; see {data_dir / 'broker.log'}")
        time.sleep(0.05)
    _write_json(data_dir / BROKER_FILE, {"url": url, "pid": process.pid})
    return url, process.pid


def stop_embedded_broker(data_dir: Path, url: str, pid: int) -> None:
    """Stop the embedded broker, if the process `broker.json` names is still that broker."""
    if _answers(url):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    (data_dir / BROKER_FILE).unlink(missing_ok=True)


def broker_credentials(environ: Mapping[str, str]) -> dict[str, str | None]:
    missing = [name for name in CREDENTIALS if not environ.get(name)]
    if missing:
        raise ServeError(f"--broker-url needs {', '.join(missing)} in the environment")
    return {
        "api_key": environ["IG_API_KEY"],
        "identifier": environ["IG_IDENTIFIER"],
        "password": environ["IG_PASSWORD"],
        "account_id": environ.get("IG_ACCOUNT_ID") or None,
    }


def _write_json(path: Path, document: dict) -> None:
    with OsFileSystem() as fs:
        replace_atomically(fs, str(path), json.dumps(document).encode())


# ---------------------------------------------------------------------------- serve


def serve(
    options: ServeOptions, *, clock: Clock | None = None, environ: Mapping[str, str] = os.environ
) -> None:
    """Run the service until SIGINT or SIGTERM. `clock` is the engine's Clock port."""
    check_bind(options.host, options.allow_remote)
    credentials: dict[str, str | None] = {
        "api_key": DEFAULT_API_KEY,
        "identifier": DEFAULT_IDENTIFIER,
        "password": DEFAULT_PASSWORD,
        "account_id": None,
    }
    if options.broker_url is not None:
        credentials = broker_credentials(environ)
    # Bound before anything starts, so a port in use stops us before a broker is running.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    with listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((options.host, options.port))
        service_url = f"http://{options.host}:{listener.getsockname()[1]}"
        data_dir = options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        token = load_or_create_token(data_dir)
        embedded = embedded_broker(data_dir) if options.broker_url is None else None
        url = embedded[0] if embedded is not None else str(options.broker_url)
        fs = OsFileSystem()

        def release() -> None:
            """Stop what this service started; harmless to call again."""
            fs.close()
            if embedded is not None:
                stop_embedded_broker(data_dir, *embedded)

        try:
            broker = IGRestBroker(url, **credentials)  # type: ignore[arg-type]
            # The trade stream logs in with the REST session: IG's Lightstreamer endpoint, or
            # on the default the embedded broker's own (the same loopback server, over TLCP).
            stream = IGTradeStream(broker.streaming_credentials)
            held = None if options.test_clock is None else HeldClock(options.test_clock)
            clock = held or clock
            engine = Engine.open(
                str(data_dir),
                broker,
                fs=fs,
                clock=clock or SystemClock(),
                config=EngineConfig(in_doubt_grace=options.in_doubt_grace, limits=options.limits),
                stream=stream,
            )

            def started() -> None:
                stream.attach()  # the engine was opened before uvicorn's loop ran
                try:
                    _write_json(data_dir / SERVICE_FILE, {"url": service_url, "pid": os.getpid()})
                except OSError as e:
                    # A full disk must not keep the engine from starting: it reads, reconciles
                    # and reports, and only the orders that need a write are refused.
                    log.warning("could not write %s: %s", data_dir / SERVICE_FILE, e)
                switch = engine.kill_switch.status
                log.info(
                    "serving %s; broker %s%s; data %s; kill switch %s (%s); token in %s (%s)",
                    service_url,
                    url,
                    " (embedded simulated IG broker)" if embedded else "",
                    data_dir,
                    "ACTIVE" if switch.active else "off",
                    switch.reason,
                    data_dir / TOKEN_FILE,
                    redacted(token),
                )

            # In the app's lifespan, not only below: once it has stopped on a signal, uvicorn
            # raises that signal again, and SIGTERM then ends the process before `finally`.
            async def stopping() -> None:
                stream.stop()
                await broker.aclose()
                release()

            app = create_app(
                engine,
                token,
                reads_need_token=options.allow_remote,
                tick_interval=None if held else options.tick_interval,
                started=started,
                stopping=stopping,
            )
            if held is not None:
                app.router.routes.extend(clock_routes(engine, held, token, stream))
            config = uvicorn.Config(
                app, http="h11", lifespan="on", log_level="warning", access_log=False
            )
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            release()
