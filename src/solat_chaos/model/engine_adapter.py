"""The engine adapter: the only way the process machine reaches an engine process.

Real engines name their endpoints differently (one resets its kill switch at
`/execution/kill-switch/reset`, another wants `/connect` and `/arm` before it trades), so the
process machine speaks to an `EngineAdapter`, never to URLs. An adapter knows:

- how to start the engine (`command`, `environment`: the IG base URL of the broker to use,
  the data directory, the port), and when it is ready (`health`);
- the operations the rules need: submit, close, positions, reconcile, activate, deactivate
  and read the kill switch;
- optionally, the engine's clock (`advance_clock`, `advance_to_next_timer`) and how far it
  has read its trade stream (`trade_stream_position`), which make a run replayable, and what
  its data directory holds (`ledger`, `kill_switch_file`), which
  the after-the-fact invariants read.

An operation the engine did not answer (refused, reset, timed out, a dead or paused process)
raises `EngineUnreachable`: the caller knows nothing about its outcome. A capability an
engine lacks is `None` (`ledger`, `kill_switch_file`, `risk_limits`) or raises
`NotSupported` (the clock): the invariants that need it are reported NOT CHECKED.

`SolatEngineAdapter` speaks the API of `solat-chaos serve` (DESIGN.md, "API").
`load_adapter("module:Class")` loads a team's own (`--engine-adapter`); docs/engine-contract.md
documents the contract with a worked adapter.
"""

from __future__ import annotations

import functools
import importlib
import os
import posixpath
import ssl
import sys
from typing import Any

import attrs
import httpx

from solat_chaos.chaos.engine_env import ledger_records
from solat_chaos.engine.filesystem import OsFileSystem
from solat_chaos.engine.kill_switch import KILL_SWITCH_FILE, KillSwitch
from solat_chaos.engine.ledger import LEDGER_FILE
from solat_chaos.engine.records import Record
from solat_chaos.engine.risk import RiskLimits

# What the order endpoints answer (DESIGN.md, Router).
ACCEPTED, PARTIALLY_FILLED, REJECTED, IN_DOUBT = (
    "ACCEPTED",
    "PARTIALLY_FILLED",
    "REJECTED",
    "IN_DOUBT",
)
FILLED = (ACCEPTED, PARTIALLY_FILLED)


class EngineUnreachable(Exception):
    """The engine did not answer (refused, reset, timed out): the outcome is unknown."""


class NotSupported(Exception):
    """The engine has no such capability; the message says which."""


@attrs.frozen
class OrderAnswer:
    """An answer of the submit or close endpoint."""

    status: str  # ACCEPTED | PARTIALLY_FILLED | REJECTED | IN_DOUBT
    deal_reference: str | None
    deal_id: str | None = None
    filled_size: float = 0.0
    reason: str = ""


@attrs.frozen
class SwitchAnswer:
    """The kill switch as the engine reports it; `persisted` is None when it does not say."""

    active: bool
    persisted: bool | None = None
    reason: str = ""


@attrs.frozen
class ReconcileAnswer:
    """`complete`: it succeeded and left nothing for later, so the book must now be the
    broker's."""

    ok: bool
    complete: bool
    detail: str = ""


@attrs.frozen
class HealthAnswer:
    """What the health endpoint says; None where the engine does not report it."""

    status: str
    trading_state: str | None = None
    outcomes_pending: int | None = None
    in_doubt: int | None = None
    kill_switch_active: bool | None = None
    reasons: tuple[str, ...] = ()  # why the engine is not ACTIVE or not ok, as it says


@attrs.frozen
class StreamPosition:
    """How far the engine has read the broker's trade stream: the session it reads now
    (None while it has none) and how many of that session's updates it has handled."""

    session: str | None
    updates: int


@attrs.frozen
class KillSwitchFile:
    """The kill switch state file after the fact: `whole` is False for a torn or corrupt file."""

    path: str
    whole: bool
    active: bool | None
    problem: str = ""


class EngineAdapter:
    """The contract. Subclass it; every method below is one the process machine calls.

    Lifecycle: the harness calls `command` and `environment` to start a process, then polls
    `health` until it answers. Between processes the same data directory is used."""

    name = "engine"

    def __init__(self, base_url: str = "", data_dir: str = "") -> None:
        self.base_url = base_url
        self.data_dir = data_dir

    def bind(self, base_url: str, data_dir: str) -> None:
        """Where the next process serves its API and keeps its files."""
        self.base_url, self.data_dir = base_url, data_dir

    # -- starting -------------------------------------------------------------------------

    def command(self, *, port: int, data_dir: str, broker_url: str, clock: float) -> list[str]:
        """The argv that starts the engine on 127.0.0.1:`port` with `data_dir`, talking to
        the IG-dialect broker at `broker_url`; `clock`: the epoch seconds its clock starts
        at, if the engine lets a test hold its clock."""
        raise NotImplementedError

    def environment(self, *, broker_url: str, data_dir: str) -> dict[str, str]:
        """Extra environment variables of the engine process (credentials, URLs)."""
        return {}

    def ready(self) -> bool:
        """The process answers and has read its data directory (after start)."""
        try:
            self.health()
        except EngineUnreachable:
            return False
        return True

    # -- the operations -------------------------------------------------------------------

    def health(self) -> HealthAnswer:
        raise NotImplementedError

    def submit(self, epic: str, direction: str, size: float) -> OrderAnswer:
        raise NotImplementedError

    def close(self, deal_id: str, size: float | None) -> OrderAnswer:
        raise NotImplementedError

    def positions(self) -> dict[str, float]:
        """{deal id: size} of the engine's book."""
        raise NotImplementedError

    def reconcile(self) -> ReconcileAnswer:
        raise NotImplementedError

    def activate_kill_switch(self) -> SwitchAnswer:
        raise NotImplementedError

    def deactivate_kill_switch(self) -> SwitchAnswer:
        raise NotImplementedError

    def kill_switch_status(self) -> SwitchAnswer:
        raise NotImplementedError

    # -- optional: the engine's clock ------------------------------------------------------

    def advance_clock(self, seconds: float) -> None:
        raise NotSupported(f"{self.name}: no test clock")

    def advance_to_next_timer(self) -> float:
        """Move the engine's clock to its next timer and let it run; the seconds moved."""
        raise NotSupported(f"{self.name}: no test clock")

    def trade_stream_position(self) -> StreamPosition:
        """How far the engine has read the broker's trade stream (Lightstreamer): the harness
        waits until it has handled everything the broker sent before it looks, so the
        stream's real-time delivery never decides what a step sees."""
        raise NotSupported(f"{self.name}: does not say how far it read its trade stream")

    # -- optional: the data directory, read after the fact ---------------------------------

    def ledger(self) -> list[Record] | None:
        """Every verifiable record of the engine's audit trail, from its files; None when
        the engine keeps none the checker can read."""
        return None

    def kill_switch_file(self) -> KillSwitchFile | None:
        """The kill switch state file as it is on disk; None when there is no such file to
        read (or the engine does not say where it is)."""
        return None

    def kill_switch_path(self) -> str | None:
        """Where the kill switch state lives, so the checker can corrupt it between
        processes (FAIL_CLOSED); None when unknown."""
        return None

    def owns(self, deal_reference: str | None) -> bool:
        """Whether a deal reference at the broker is one of this engine's orders."""
        return False

    def risk_limits(self) -> RiskLimits | None:
        """The engine's limits, to judge RISK_LIMITS against the broker; None: unknown."""
        return None

    def close_client(self) -> None:
        """Release connections (end of an example)."""


# ---------------------------------------------------------------------- our own engine

# The simulated IG broker's credentials (broker/ig_http.py defaults), as IGRestBroker reads
# them from the environment.
SIM_CREDENTIALS = {
    "IG_API_KEY": "SIM-API-KEY",
    "IG_IDENTIFIER": "sim-user",
    "IG_PASSWORD": "sim-password",
}
TOKEN_FILE = "api_token"
# How DurableSwitch words a state file it could not read.
FAILING_CLOSED = "failing closed"
# The answer must come before the engine's own broker calls could time out twice over.
CLIENT_TIMEOUT = 10.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: httpx builds a new one per client otherwise, and
    loading the CA bundle takes 30-130 ms, paid once per restart and per dropped client."""
    return httpx.create_ssl_context()


class SolatEngineAdapter(EngineAdapter):
    """`solat-chaos serve`, through its HTTP API (DESIGN.md, "API")."""

    name = "solat"

    def __init__(self, base_url: str = "", data_dir: str = "") -> None:
        super().__init__(base_url, data_dir)
        self._client: httpx.Client | None = None

    def command(self, *, port: int, data_dir: str, broker_url: str, clock: float) -> list[str]:
        return [
            *self.launcher(),
            "serve",
            "--port", str(port),
            "--data-dir", data_dir,
            "--broker-url", broker_url,
            "--test-clock", repr(clock),
        ]  # fmt: skip

    def launcher(self) -> list[str]:
        """The program before `serve ...`; a test may run the CLI through a wrapper."""
        return [sys.executable, "-m", "solat_chaos.cli"]

    def environment(self, *, broker_url: str, data_dir: str) -> dict[str, str]:
        return dict(SIM_CREDENTIALS)

    # -- HTTP -----------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, timeout=CLIENT_TIMEOUT, verify=_tls_context()
            )
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def bind(self, base_url: str, data_dir: str) -> None:
        self.close_client()
        super().bind(base_url, data_dir)

    def _token(self) -> str:
        with open(os.path.join(self.data_dir, TOKEN_FILE), encoding="utf-8") as f:
            return f.read().strip()

    def _call(self, method: str, path: str, *, body: Any = None, auth: bool = False) -> Any:
        headers = {"Authorization": f"Bearer {self._token()}"} if auth else {}
        try:
            response = self.client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            # A connection pooled before a kill or pause is dead: drop it with the client.
            # (Not after a refused connect, which pooled nothing: a start polls through many.)
            if not isinstance(exc, httpx.ConnectError):
                self.close_client()
            raise EngineUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise EngineUnreachable(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise EngineUnreachable(f"{method} {path}: not JSON: {response.text[:200]}") from exc

    # -- the operations -------------------------------------------------------------------

    def health(self) -> HealthAnswer:
        body = self._call("GET", "/health")
        return HealthAnswer(
            status=body.get("status", ""),
            trading_state=body.get("trading_state"),
            outcomes_pending=body.get("outcomes_pending"),
            in_doubt=body.get("in_doubt"),
            kill_switch_active=body.get("kill_switch_active"),
            reasons=tuple(str(reason) for reason in body.get("reasons") or ()),
        )

    def submit(self, epic: str, direction: str, size: float) -> OrderAnswer:
        body = {"epic": epic, "direction": direction, "size": size}
        return _order(self._call("POST", "/execution/orders", body=body, auth=True))

    def close(self, deal_id: str, size: float | None) -> OrderAnswer:
        body = {} if size is None else {"size": size}
        path = f"/execution/positions/{deal_id}/close"
        return _order(self._call("POST", path, body=body, auth=True))

    def positions(self) -> dict[str, float]:
        body = self._call("GET", "/execution/positions")
        items = body.get("positions", body) if isinstance(body, dict) else body
        return {p["deal_id"]: float(p["size"]) for p in items}

    def reconcile(self) -> ReconcileAnswer:
        body = self._call("POST", "/execution/reconcile", auth=True)
        ok = body.get("ok") is True
        complete = ok and not body.get("deferred")
        return ReconcileAnswer(ok, complete, str(body.get("error") or ""))

    def activate_kill_switch(self) -> SwitchAnswer:
        return _switch(self._call("POST", "/execution/kill-switch/activate", body={}))

    def deactivate_kill_switch(self) -> SwitchAnswer:
        return _switch(self._call("POST", "/execution/kill-switch/deactivate", body={}, auth=True))

    def kill_switch_status(self) -> SwitchAnswer:
        return _switch(self._call("GET", "/execution/kill-switch/status"))

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/test/clock/advance", body={"seconds": seconds}, auth=True)

    def advance_to_next_timer(self) -> float:
        body = self._call("POST", "/test/clock/advance", body={"next_timer": True}, auth=True)
        return float(body["advanced"])

    def trade_stream_position(self) -> StreamPosition:
        body = self._call("GET", "/test/stream", auth=True)
        return StreamPosition(body.get("session"), int(body.get("updates") or 0))

    # -- the data directory ---------------------------------------------------------------

    def ledger(self) -> list[Record] | None:
        path = os.path.join(self.data_dir, LEDGER_FILE)
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            return ledger_records(f.read())

    def kill_switch_path(self) -> str | None:
        return posixpath.join(self.data_dir, KILL_SWITCH_FILE)

    def kill_switch_file(self) -> KillSwitchFile | None:
        path = self.kill_switch_path()
        assert path is not None
        if not os.path.exists(path):
            return KillSwitchFile(path, whole=True, active=None)
        # Read the way the engine reads it at start: a torn or corrupt file fails closed.
        status = KillSwitch(OsFileSystem(), self.data_dir).status
        torn = FAILING_CLOSED in status.reason
        return KillSwitchFile(path, not torn, status.active, status.reason if torn else "")

    def owns(self, deal_reference: str | None) -> bool:
        return (deal_reference or "").startswith("SOLAT")

    def risk_limits(self) -> RiskLimits | None:
        return RiskLimits()


def _order(body: Any) -> OrderAnswer:
    return OrderAnswer(
        status=str(body.get("status")),
        deal_reference=body.get("deal_reference"),
        deal_id=body.get("deal_id"),
        filled_size=float(body.get("filled_size") or 0.0),
        reason=str(body.get("reason") or ""),
    )


def _switch(body: Any) -> SwitchAnswer:
    return SwitchAnswer(
        active=bool(body.get("active")),
        persisted=body.get("persisted"),
        reason=str(body.get("reason") or ""),
    )


class AdapterError(ValueError):
    """`--engine-adapter` names nothing loadable; the message says why."""


def load_adapter(spec: str) -> type[EngineAdapter]:
    """The adapter class `module:Class` names."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise AdapterError(f"--engine-adapter takes module:Class, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"cannot import {module_name!r}: {exc}") from None
    adapter = getattr(module, class_name, None)
    if not (isinstance(adapter, type) and issubclass(adapter, EngineAdapter)):
        raise AdapterError(f"{spec} is not an EngineAdapter subclass")
    return adapter
