"""The service's rules that the fuzzer cannot judge from the schema alone: who may stop the
engine without a token, what a remote-capable service demands, where the token lives, and
that a refusal names the field at fault."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from solat_chaos.api.app import create_app
from solat_chaos.api.serve import ServeError, check_bind
from solat_chaos.api.token import TOKEN_FILE, bearer_matches, load_or_create_token
from solat_chaos.broker.harness import ig_rest_view
from solat_chaos.broker.sim import SimBroker
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.filesystem import OsFileSystem

TOKEN = "unit-token-abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACTIVATE = "/execution/kill-switch/activate"


def _client(tmp_path: Path, *, client_host: str = "127.0.0.1", remote: bool = False):
    broker = ig_rest_view(SimBroker())
    engine = Engine.open(str(tmp_path), broker, fs=OsFileSystem(), clock=SimClock())
    app = create_app(engine, TOKEN, reads_need_token=remote, tick_interval=None)
    transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
    return engine, httpx.AsyncClient(transport=transport, base_url="http://engine.test")


async def test_activation_from_loopback_needs_no_token_and_is_durable(tmp_path) -> None:
    engine, client = _client(tmp_path)
    async with client:
        answer = await client.post(ACTIVATE)
        refused = await client.post("/execution/kill-switch/deactivate")
    assert answer.status_code == 200 and answer.json()["persisted"] is True
    assert refused.status_code == 401 and refused.json()["field"] == "Authorization"
    assert Engine.open(str(tmp_path), engine.link.broker, clock=SimClock()).kill_switch.active


async def test_activation_from_elsewhere_needs_the_token(tmp_path) -> None:
    engine, client = _client(tmp_path, client_host="192.0.2.7")
    async with client:
        refused = await client.post(ACTIVATE)
        answer = await client.post(ACTIVATE, headers=AUTH)
    assert refused.status_code == 401 and answer.json()["active"] is True


async def test_a_remote_capable_service_wants_the_token_even_for_reads(tmp_path) -> None:
    _, client = _client(tmp_path, remote=True)
    async with client:
        for path in ("/health", "/execution/kill-switch/status", "/", "/openapi.json"):
            assert (await client.get(path)).status_code == 401, path
        assert (await client.post(ACTIVATE)).status_code == 401
        assert (await client.get("/health", headers=AUTH)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            b'{"epic": "CS.D.EURUSD.TODAY.IP", "direction": "BUY", "size": 1, "stop": 2}',
            422,
            "stop",
        ),
        (b'{"epic": "CS.D.EURUSD.TODAY.IP", "direction": "BUY", "size": NaN}', 400, "body"),
        (b'{"epic": "CS.D.EURUSD.TODAY.IP", "direction": "BUY", "size": 1e999}', 422, "size"),
        (b'{"epic": "CS.D.EURUSD.TODAY.IP", "direction": "UP", "size": 1}', 422, "direction"),
        (b'{"epic": "CS.D.EURUSD.TODAY.IP", "direction": "BUY"}', 422, "size"),
        (b"[1, 2]", 400, "body"),
        (b"{", 400, "body"),
    ],
)
async def test_a_bad_order_is_refused_naming_the_field(tmp_path, body, status, field) -> None:
    engine, client = _client(tmp_path)
    async with client:
        answer = await client.post("/execution/orders", content=body, headers=AUTH)
    assert (answer.status_code, answer.json()["field"]) == (status, field)
    assert not list(engine.journal.audit.intents)


async def test_a_bad_deal_id_is_refused_naming_it(tmp_path) -> None:
    _, client = _client(tmp_path)
    async with client:
        malformed = await client.post("/execution/positions/a%20b/close", headers=AUTH)
        unknown = await client.post("/execution/positions/DIAAAA0001/close", headers=AUTH)
    assert (malformed.status_code, malformed.json()["field"]) == (422, "deal_id")
    assert (unknown.status_code, unknown.json()["field"]) == (404, "deal_id")


def test_the_token_is_made_once_owner_only_and_compared_whole(tmp_path) -> None:
    token = load_or_create_token(tmp_path)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == token
    assert bearer_matches(f"Bearer {token}", token)
    assert not bearer_matches(f"Bearer {token[:-1]}", token)
    assert not bearer_matches(token, token)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "example.com"])
def test_a_non_loopback_bind_needs_allow_remote(host) -> None:
    with pytest.raises(ServeError, match="--allow-remote"):
        check_bind(host, allow_remote=False)
    check_bind(host, allow_remote=True)
    check_bind("127.0.0.1", allow_remote=False)


def test_the_engine_service_starts_without_the_checker(tmp_path) -> None:
    """`solat-chaos serve` loads none of the checker (Hypothesis, the machines): the process
    machine starts an engine every example and at every restart, and those imports were a
    quarter of each start. Its command refuses a remote bind here, after loading the service."""
    served = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "solat_chaos.cli", "serve"]
        + ["--host", "192.0.2.7", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2, served.stderr[-2000:]
    assert "--allow-remote" in served.stderr
    loaded = {
        line.rsplit("|", 1)[-1].strip()
        for line in served.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "solat_chaos.api.serve" in loaded
    checker = sorted(m for m in loaded if m.startswith(("hypothesis", "solat_chaos.model")))
    assert checker == []
