"""Tier 4 — the seed's manual checks, automated against a real `solat-chaos serve` process
that is really killed (SIGKILL) and started again on the same data directory.

The embedded simulated IG broker runs in a process of its own, so it outlives the engine:
after a restart the broker's truth is what the engine must agree with.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import httpx
import pytest

from solat_chaos.broker.ig_http import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.engine.broker import ACCEPTED, BUY
from solat_chaos.engine.filesystem import OsFileSystem
from solat_chaos.engine.kill_switch import KILL_SWITCH_FILE
from solat_chaos.engine.ledger import Ledger
from solat_chaos.engine.records import Confirmed, Intent, Rejected
from tests.kill_switch_load import status_reads_during_activation

pytestmark = [pytest.mark.chaos, pytest.mark.tier4]

EURUSD = "CS.D.EURUSD.TODAY.IP"
ORDERS = 50
KILL_AFTER_ANSWERS = 10


def status(url: str) -> dict:
    return httpx.get(f"{url}/execution/kill-switch/status", timeout=5.0).json()


def activate(url: str) -> dict:
    """The seed's `curl -X POST .../execution/kill-switch/activate`, with curl where it is
    installed, else the same bare POST from httpx."""
    endpoint = f"{url}/execution/kill-switch/activate"
    curl = shutil.which("curl")
    if curl is None:
        return httpx.post(endpoint, timeout=5.0).json()
    done = subprocess.run(
        [curl, "-s", "-X", "POST", endpoint], capture_output=True, timeout=30, check=True
    )
    return httpx.Response(200, content=done.stdout).json()


def test_seed_check__activated_kill_switch_survives_sigkill(engine_process) -> None:
    """
    SCENARIO: The operator activates the kill switch with a bare POST, then the engine is SIGKILLed
    EXPECTED: The answer said persisted; the engine started again on the same data says "active"
    FAILURE MODE: The switch lived in memory only, or the API answered before it was durable
    """
    # SETUP
    engine = engine_process()
    url = engine.start()
    assert status(url)["active"] is False

    # INJECT CHAOS
    answer = activate(url)
    engine.kill()
    url = engine.start()

    # VERIFICATION
    assert answer["active"] is True and answer["persisted"] is True
    after = status(url)
    assert after["active"] is True and after["reason"] == answer["reason"]
    refused = httpx.post(f"{url}/execution/kill-switch/deactivate", timeout=5.0)
    assert refused.status_code == 401 and status(url)["active"] is True


def test_corrupted_kill_switch_file__restart_comes_up_active_and_says_why(engine_process) -> None:
    """
    SCENARIO: The kill switch was turned off; while the engine is down its state file is corrupted
    EXPECTED: The restarted engine reports the switch active (fail closed) and says the file is bad
    FAILURE MODE: An unreadable state is read as "off", or the engine refuses to start at all
    """
    # SETUP
    engine = engine_process()
    url = engine.start()
    activate(url)
    off = httpx.post(
        f"{url}/execution/kill-switch/deactivate", headers=engine.auth, timeout=5.0
    ).json()
    assert off["active"] is False and off["persisted"] is True
    engine.kill()

    # INJECT CHAOS
    state_file = engine.data_dir / KILL_SWITCH_FILE
    state_file.write_bytes(state_file.read_bytes().replace(b"false", b"fals3"))
    url = engine.start()

    # VERIFICATION
    after = status(url)
    assert after["active"] is True
    assert "corrupt" in after["reason"] and "failing closed" in after["reason"]
    health = httpx.get(f"{url}/health", timeout=5.0).json()
    assert health["kill_switch_active"] is True
    assert any("failing closed" in reason for reason in health["reasons"])


async def _orders_until_kill(engine) -> dict[str, dict]:
    """Send ORDERS orders at once; SIGKILL the engine once KILL_AFTER_ANSWERS are answered.
    The answers that arrived, by deal reference."""
    answered: dict[str, dict] = {}
    body = {"epic": EURUSD, "direction": BUY, "size": 0.5}
    async with httpx.AsyncClient(
        base_url=engine.url,
        headers=engine.auth,
        timeout=30.0,
        limits=httpx.Limits(max_connections=ORDERS),
    ) as client:

        async def order(i: int) -> None:
            response = await client.post("/execution/orders", json=body)
            result = response.json()
            answered[result["deal_reference"]] = result
            if len(answered) == KILL_AFTER_ANSWERS:
                engine.kill()

        await asyncio.gather(*(order(i) for i in range(ORDERS)), return_exceptions=True)
    return answered


async def _broker_truth(
    url: str, references: set[str]
) -> tuple[dict[str, tuple[str, float]], set[str]]:
    """The broker's open positions (deal id -> deal reference, size), and which of
    `references` it executed."""
    async with IGRestBroker(
        url, api_key=DEFAULT_API_KEY, identifier=DEFAULT_IDENTIFIER, password=DEFAULT_PASSWORD
    ) as broker:
        positions = {p.deal_id: (p.deal_reference, p.size) for p in await broker.positions()}
        executed = set()
        for reference in references:
            confirm = await broker.confirm(reference)
            if confirm is not None and confirm.status == ACCEPTED:
                executed.add(reference)
    return positions, executed


async def test_sigkill_with_50_orders_in_flight__none_lost_none_left_in_doubt(
    engine_process,
) -> None:
    """
    SCENARIO: 50 orders are sent at once and the engine is SIGKILLed after 10 were answered
    EXPECTED: Every order answered ACCEPTED is in the ledger and at the broker; the restart's first
              reconcile resolves every unanswered one: at the broker and booked, or at neither
    FAILURE MODE: An acknowledged fill is lost, or an order reached the broker without a durable
                  intent, or stays in doubt, or is booked without being at the broker
    """
    # SETUP
    engine = engine_process(
        "--max-open-positions", "100", "--max-exposure", "100", "--in-doubt-grace", "0.2"
    )
    engine.start()
    engine.wait_for(lambda h: h["trading_state"] == "ACTIVE", "reconciled at start")
    broker_url = engine.broker_url

    # INJECT CHAOS
    answered = await _orders_until_kill(engine)
    engine.start()
    health = engine.wait_for(lambda h: h["trading_state"] == "ACTIVE", "reconciled after restart")
    book = httpx.get(f"{engine.url}/execution/positions", timeout=5.0).json()["positions"]
    engine.kill()

    # VERIFICATION
    assert engine.broker_url == broker_url, "the broker must outlive the engine"
    with OsFileSystem() as fs:
        ledger, _ = Ledger.open(fs, str(engine.data_dir), 0.0)
        records = list(ledger.records())
    intents = {r.deal_reference for r in records if isinstance(r, Intent)}
    confirmed = {r.deal_reference for r in records if isinstance(r, Confirmed)}
    rejected = {r.deal_reference for r in records if isinstance(r, Rejected)}
    positions, executed = await _broker_truth(broker_url, intents | set(answered))
    accepted = {ref for ref, result in answered.items() if result["status"] == "ACCEPTED"}
    unanswered = intents - set(answered)
    statuses = sorted(result["status"] for result in answered.values())
    assert accepted and unanswered, (
        f"the kill must land with orders answered and in flight; answered: {statuses}, "
        f"in flight: {len(unanswered)}"
    )
    assert health["in_doubt"] == 0 and health["outcomes_pending"] == 0
    assert accepted <= confirmed and accepted <= executed
    for result in answered.values():
        if result["status"] == "ACCEPTED":
            assert result["deal_id"] in positions
    for reference in unanswered:
        if reference in executed:
            assert reference in confirmed, f"{reference} is at the broker but not booked"
        else:
            assert reference in rejected and reference not in confirmed, reference
    at_broker = {reference for reference, _ in positions.values()}
    assert at_broker <= intents, "an order reached the broker without a durable intent"
    assert {p["deal_id"]: p["size"] for p in book} == {
        deal_id: size for deal_id, (_, size) in positions.items()
    }


async def test_1000_status_reads_during_activation__none_inactive_after_the_answer(
    engine_process,
) -> None:
    """
    SCENARIO: 1,000 concurrent kill-switch status reads while an activation is in flight
    EXPECTED: No read sent after the activation's answer arrived says "inactive"
    FAILURE MODE: Activation answers before the state every reader sees has changed
    """
    # SETUP
    engine = engine_process()
    engine.start()

    # INJECT CHAOS
    load = await status_reads_during_activation(engine.url, reads=1000)

    # VERIFICATION
    assert load.activation["active"] is True and load.activation["persisted"] is True
    after_answer = [read for read in load.reads if read.sent > load.answered]
    assert after_answer, "no read was sent after the activation's answer"
    assert all(read.active for read in after_answer)
