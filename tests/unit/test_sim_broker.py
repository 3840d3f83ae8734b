"""SimBroker: the in-memory IG-like broker that is the ground truth of every test."""

from __future__ import annotations

import asyncio
import math

import pytest

from solat_chaos.broker.sim import (
    CLOSE_POSITION,
    CLOSED,
    CONFIRM,
    INSTRUMENT_NOT_FOUND,
    INSUFFICIENT_FUNDS,
    MINIMUM_ORDER_SIZE_ERROR,
    OPEN_POSITION,
    OPENED,
    PARTIALLY_CLOSED,
    POSITION_NOT_AVAILABLE_TO_CLOSE,
    POSITIONS,
    WRONG_SIDE_OF_MARKET,
    Market,
    SimBroker,
)
from solat_chaos.engine.broker import (
    ACCEPTED,
    REJECTED,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    CloseOrder,
    OpenOrder,
)
from solat_chaos.engine.clock import SimClock

pytestmark = pytest.mark.filterwarnings("error")

EURUSD = "CS.D.EURUSD.TODAY.IP"
FTSE = "IX.D.FTSE.DAILY.IP"


def buy(ref: str, size: float = 2.0, epic: str = EURUSD) -> OpenOrder:
    return OpenOrder(ref, epic, "BUY", size)


def sell_close(ref: str, deal_id: str, size: float) -> CloseOrder:
    return CloseOrder(ref, deal_id, "SELL", size)


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def sim(clock: SimClock) -> SimBroker:
    return SimBroker(clock=clock)


# --------------------------------------------------------------------------- opening


async def test_open_accepted_creates_position_confirm_event_and_request(
    sim: SimBroker, clock: SimClock
) -> None:
    confirm = await sim.open_position(buy("REF1", 2.0))

    assert confirm.status == ACCEPTED
    assert confirm.reason == "SUCCESS"
    assert confirm.deal_id == "DIAAAA000000001"
    assert (confirm.epic, confirm.direction, confirm.size, confirm.level) == (
        EURUSD,
        "BUY",
        2.0,
        1.1,
    )
    [position] = sim.snapshot_positions()
    assert (position.deal_id, position.deal_reference, position.size) == (
        "DIAAAA000000001",
        "REF1",
        2.0,
    )
    assert sim.confirms == {"REF1": confirm}
    [event] = sim.events
    assert (event.seq, event.kind, event.deal_id, event.size, event.remaining) == (
        1,
        OPENED,
        "DIAAAA000000001",
        2.0,
        2.0,
    )
    [request] = sim.requests
    assert (request.seq, request.kind, request.deal_reference, request.epic, request.size) == (
        1,
        OPEN_POSITION,
        "REF1",
        EURUSD,
        2.0,
    )
    assert request.at == clock.now()
    assert request.fault is None


async def test_deal_ids_come_from_a_counter(sim: SimBroker) -> None:
    ids = [(await sim.open_position(buy(f"R{i}", 1.0))).deal_id for i in range(3)]
    assert ids == ["DIAAAA000000001", "DIAAAA000000002", "DIAAAA000000003"]


async def test_reused_reference_answers_first_confirm_without_executing_again(
    sim: SimBroker,
) -> None:
    first = await sim.open_position(buy("SAME", 2.0))
    again = await sim.open_position(buy("SAME", 5.0, epic=FTSE))

    assert again == first
    assert len(sim.snapshot_positions()) == 1
    assert len(sim.events) == 1
    assert [r.deal_reference for r in sim.requests] == ["SAME", "SAME"]


async def test_confirm_by_reference_and_unknown_reference(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("REF1"))
    assert await sim.confirm("REF1") == opened
    assert await sim.confirm("NEVER-SEEN") is None
    assert [r.kind for r in sim.requests] == [OPEN_POSITION, CONFIRM, CONFIRM]


async def test_unknown_epic_is_rejected_with_ig_reason(sim: SimBroker) -> None:
    confirm = await sim.open_position(buy("R1", 1.0, epic="XX.D.NOPE.IP"))
    assert (confirm.status, confirm.reason, confirm.deal_id, confirm.size) == (
        REJECTED,
        INSTRUMENT_NOT_FOUND,
        None,
        0.0,
    )
    assert sim.snapshot_positions() == []
    assert await sim.confirm("R1") == confirm  # rejections are stored, and idempotent


@pytest.mark.parametrize("size", [0, 0.0, -1.0, math.nan, math.inf, -math.inf])
async def test_bad_size_is_rejected_with_ig_reason(sim: SimBroker, size: float) -> None:
    confirm = await sim.open_position(buy("R1", size))
    assert (confirm.status, confirm.reason) == (REJECTED, MINIMUM_ORDER_SIZE_ERROR)
    assert sim.snapshot_positions() == []
    assert sim.events == ()


async def test_below_market_minimum_size_is_rejected() -> None:
    sim = SimBroker([Market("EP.IC.TEST", "Test", 100.0, 0.05, min_size=1.0)])
    confirm = await sim.open_position(OpenOrder("R1", "EP.IC.TEST", "BUY", 0.5))
    assert confirm.reason == MINIMUM_ORDER_SIZE_ERROR


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (OpenOrder("R1", EURUSD, "LONG", 1.0), "validation.pattern.invalid.request.direction"),
        (
            OpenOrder("has space", EURUSD, "BUY", 1.0),
            "validation.pattern.invalid.request.dealReference",
        ),
        (
            OpenOrder("R" * 31, EURUSD, "BUY", 1.0),
            "validation.pattern.invalid.request.dealReference",
        ),
        (OpenOrder("", EURUSD, "BUY", 1.0), "validation.null-not-allowed.request.dealReference"),
        (OpenOrder("R1", EURUSD, "BUY", "1"), "validation.null-not-allowed.request.size"),  # type: ignore[arg-type]
        (OpenOrder("R1", None, "BUY", 1.0), "validation.null-not-allowed.request.epic"),  # type: ignore[arg-type]
    ],
)
async def test_structurally_invalid_order_raises_rejected_and_stores_nothing(
    sim: SimBroker, order: OpenOrder, code: str
) -> None:
    with pytest.raises(BrokerRejected) as caught:
        await sim.open_position(order)
    assert caught.value.reason == code
    assert sim.confirms == {}
    assert len(sim.requests) == 1  # it did reach the broker


async def test_insufficient_funds_is_rejected(sim: SimBroker) -> None:
    # 1 £/pt of EUR/USD at 1.1 needs 1.1 × 10000 × 3.33% = 366.30 margin; 10 000 buys 27.
    assert (await sim.open_position(buy("R1", 27.0))).status == ACCEPTED
    confirm = await sim.open_position(buy("R2", 1.0))
    assert (confirm.status, confirm.reason) == (REJECTED, INSUFFICIENT_FUNDS)


# --------------------------------------------------------------------------- account


async def test_account_margin_available_and_pnl_follow_prices(sim: SimBroker) -> None:
    before = await sim.account()
    assert (before.balance, before.available, before.profit_loss) == (10_000.0, 10_000.0, 0.0)

    opened = await sim.open_position(buy("R1", 2.0))
    after_open = await sim.account()
    assert after_open.balance == 10_000.0
    assert after_open.available == pytest.approx(10_000.0 - 2 * 1.1 * 10_000 * 0.0333)

    sim.set_price(EURUSD, 1.1010)  # +10 points on 2 £/pt
    moved = await sim.account()
    assert moved.profit_loss == pytest.approx(20.0)
    assert moved.available == pytest.approx(10_000.0 + 20.0 - 2 * 1.101 * 10_000 * 0.0333)

    await sim.close_position(sell_close("C1", opened.deal_id, 2.0))
    closed = await sim.account()
    assert (closed.balance, closed.available, closed.profit_loss) == (10_020.0, 10_020.0, 0.0)


def test_set_price_refuses_bad_levels(sim: SimBroker) -> None:
    with pytest.raises(ValueError):
        sim.set_price(EURUSD, math.nan)
    with pytest.raises(KeyError):
        sim.set_price("NOT.AN.EPIC", 1.0)


# --------------------------------------------------------------------------- closing


async def test_partial_then_full_close(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 3.0))
    partial = await sim.close_position(sell_close("C1", opened.deal_id, 1.0))

    assert (partial.status, partial.deal_id, partial.size, partial.direction) == (
        ACCEPTED,
        opened.deal_id,
        1.0,
        "SELL",
    )
    assert [p.size for p in sim.snapshot_positions()] == [2.0]
    assert sim.confirm_record("C1").status == "PARTIALLY_CLOSED"

    full = await sim.close_position(sell_close("C2", opened.deal_id, 2.0))
    assert full.size == 2.0
    assert sim.snapshot_positions() == []
    assert sim.confirm_record("C2").status == "CLOSED"
    assert [(e.kind, e.size, e.remaining) for e in sim.events] == [
        (OPENED, 3.0, 3.0),
        (PARTIALLY_CLOSED, 1.0, 2.0),
        (CLOSED, 2.0, 0.0),
    ]


async def test_close_reference_reuse_is_idempotent(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 3.0))
    first = await sim.close_position(sell_close("C1", opened.deal_id, 1.0))
    again = await sim.close_position(sell_close("C1", opened.deal_id, 1.0))
    assert again == first
    assert [p.size for p in sim.snapshot_positions()] == [2.0]


@pytest.mark.parametrize(
    ("deal_id", "direction", "size", "reason"),
    [
        ("DIAAAA000000001", "SELL", 5.0, POSITION_NOT_AVAILABLE_TO_CLOSE),
        ("DIAAAA999999999", "SELL", 1.0, POSITION_NOT_AVAILABLE_TO_CLOSE),
        ("DIAAAA000000001", "BUY", 1.0, WRONG_SIDE_OF_MARKET),
        ("DIAAAA000000001", "SELL", -1.0, MINIMUM_ORDER_SIZE_ERROR),
    ],
)
async def test_impossible_close_is_rejected(
    sim: SimBroker, deal_id: str, direction: str, size: float, reason: str
) -> None:
    await sim.open_position(buy("R1", 3.0))
    confirm = await sim.close_position(CloseOrder("C1", deal_id, direction, size))
    assert (confirm.status, confirm.reason) == (REJECTED, reason)
    assert [p.size for p in sim.snapshot_positions()] == [3.0]


async def test_close_externally_partial_and_full(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 3.0))
    requests_before = sim.requests

    partial = sim.close_externally(opened.deal_id, 1.0)
    assert partial.size == 1.0
    assert [p.size for p in sim.snapshot_positions()] == [2.0]

    full = sim.close_externally(opened.deal_id)
    assert full.size == 2.0
    assert sim.snapshot_positions() == []
    assert sim.requests == requests_before  # not an API request: no audit entry expected
    assert [(e.kind, e.source) for e in sim.events[1:]] == [
        (PARTIALLY_CLOSED, "external"),
        (CLOSED, "external"),
    ]
    assert sim.lookup_confirm(full.deal_reference) == full
    with pytest.raises(KeyError):
        sim.close_externally(opened.deal_id)


async def test_open_externally_is_not_an_api_request(sim: SimBroker) -> None:
    confirm = sim.open_externally(FTSE, "SELL", 1.0)
    assert [p.deal_id for p in await sim.positions()] == [confirm.deal_id]
    assert [r.kind for r in sim.requests] == [POSITIONS]
    assert sim.events[0].source == "external"


# --------------------------------------------------------------------------- logs


async def test_requests_log_every_port_call_in_order(sim: SimBroker, clock: SimClock) -> None:
    opened = await sim.open_position(buy("R1"))
    clock.advance(5)
    await sim.positions()
    await sim.account()
    await sim.close_position(sell_close("C1", opened.deal_id, 1.0))
    requests = sim.requests

    assert [r.seq for r in requests] == [1, 2, 3, 4]
    assert [r.kind for r in requests] == [OPEN_POSITION, POSITIONS, "account", CLOSE_POSITION]
    assert requests[1].at == requests[0].at + 5
    assert (requests[3].deal_reference, requests[3].deal_id) == ("C1", opened.deal_id)
    assert sim.received_deal_references() == {"R1", "C1"}


async def test_events_since_a_sequence_number(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 2.0))
    await sim.open_position(buy("R2", 1.0))
    await sim.close_position(sell_close("C1", opened.deal_id, 2.0))

    assert [e.seq for e in sim.events_since(0)] == [1, 2, 3]
    assert [(e.seq, e.kind) for e in sim.events_since(1)] == [(2, OPENED), (3, CLOSED)]
    assert sim.events_since(3) == ()


# --------------------------------------------------------------------------- seams


async def test_fill_fraction_fills_part_of_the_next_opens(sim: SimBroker) -> None:
    sim.fill_fraction(0.5, count=2)
    first = await sim.open_position(buy("R1", 3.0))
    second = await sim.open_position(buy("R2", 1.0))
    third = await sim.open_position(buy("R3", 1.0))

    assert [first.size, second.size, third.size] == [1.5, 0.5, 1.0]
    assert [p.size for p in sim.snapshot_positions()] == [1.5, 0.5, 1.0]
    assert sim.confirm_record("R1").requested_size == 3.0


async def test_fill_fraction_on_close_removes_only_the_confirmed_size(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 4.0))
    sim.fill_fraction(0.25, method=CLOSE_POSITION)
    confirm = await sim.close_position(sell_close("C1", opened.deal_id, 4.0))
    assert confirm.size == 1.0
    assert [p.size for p in sim.snapshot_positions()] == [3.0]
    assert sim.events[-1].kind == PARTIALLY_CLOSED


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, math.nan])
def test_fill_fraction_refuses_bad_fractions(sim: SimBroker, bad: float) -> None:
    with pytest.raises(ValueError):
        sim.fill_fraction(bad)


async def test_fail_next_before_execute_does_not_execute(sim: SimBroker) -> None:
    sim.fail_next(OPEN_POSITION, BrokerUnavailable("refused"))
    with pytest.raises(BrokerUnavailable):
        await sim.open_position(buy("R1"))
    assert sim.snapshot_positions() == []
    assert sim.requests[0].fault == "BrokerUnavailable before execute"
    assert (await sim.open_position(buy("R2"))).status == ACCEPTED  # only the next one


async def test_fail_next_after_execute_executes_but_loses_the_answer(sim: SimBroker) -> None:
    sim.fail_next(OPEN_POSITION, BrokerTimeout("response lost"), after_execute=True)
    with pytest.raises(BrokerTimeout):
        await sim.open_position(buy("R1"))
    [position] = sim.snapshot_positions()
    assert position.deal_reference == "R1"
    assert (await sim.confirm("R1")).status == ACCEPTED  # resolvable by deal reference


async def test_fail_next_counts_and_applies_to_reads(sim: SimBroker) -> None:
    sim.fail_next(POSITIONS, BrokerRateLimited("slow down", retry_after=3.0), count=2)
    for _ in range(2):
        with pytest.raises(BrokerRateLimited) as caught:
            await sim.positions()
        assert caught.value.retry_after == 3.0
    assert await sim.positions() == []


def test_fail_next_takes_only_port_errors_and_methods(sim: SimBroker) -> None:
    with pytest.raises(TypeError):
        sim.fail_next(OPEN_POSITION, RuntimeError("x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sim.fail_next("submit", BrokerTimeout("x"))


async def test_hold_lets_the_test_choose_the_execution_order(sim: SimBroker) -> None:
    sim.hold(OPEN_POSITION)
    first = asyncio.create_task(sim.open_position(buy("FIRST", 1.0)))
    second = asyncio.create_task(sim.open_position(buy("SECOND", 1.0)))
    await asyncio.sleep(0)

    assert [p.deal_reference for p in sim.pending] == ["FIRST", "SECOND"]
    assert [r.fault for r in sim.requests] == ["held", "held"]  # logged on arrival
    assert sim.snapshot_positions() == []
    assert not first.done() and not second.done()

    sim.release(1)  # the second to arrive executes first
    assert (await second).deal_id == "DIAAAA000000001"
    assert not first.done()
    sim.release(0)
    assert (await first).deal_id == "DIAAAA000000002"
    assert sim.pending == ()


async def test_hold_count_holds_only_the_next_calls(sim: SimBroker) -> None:
    sim.hold(OPEN_POSITION, count=1)
    held = asyncio.create_task(sim.open_position(buy("R1")))
    await asyncio.sleep(0)
    direct = await sim.open_position(buy("R2"))
    assert direct.status == ACCEPTED
    assert [p.deal_reference for p in sim.pending] == ["R1"]
    sim.release()
    assert (await held).status == ACCEPTED


@pytest.mark.parametrize("executed", [True, False])
async def test_time_out_answers_timeout_executed_or_not(sim: SimBroker, executed: bool) -> None:
    sim.hold(OPEN_POSITION)
    task = asyncio.create_task(sim.open_position(buy("R1")))
    await asyncio.sleep(0)
    sim.time_out(0, executed=executed)
    with pytest.raises(BrokerTimeout):
        await task
    assert len(sim.snapshot_positions()) == (1 if executed else 0)
    assert (await sim.confirm("R1") is not None) is executed


async def test_held_request_of_a_cancelled_caller_still_executes_on_release(
    sim: SimBroker,
) -> None:
    sim.hold(OPEN_POSITION)
    task = asyncio.create_task(sim.open_position(buy("R1")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [p.deal_reference for p in sim.pending] == ["R1"]
    sim.release(0)
    assert [p.deal_reference for p in sim.snapshot_positions()] == ["R1"]


async def test_held_call_gets_its_bound_fault_on_release(sim: SimBroker) -> None:
    sim.hold(OPEN_POSITION)
    sim.fail_next(OPEN_POSITION, BrokerTimeout("lost"), after_execute=True)
    task = asyncio.create_task(sim.open_position(buy("R1")))
    await asyncio.sleep(0)
    assert sim.requests[0].fault == "held, BrokerTimeout after execute"
    sim.release(0)
    with pytest.raises(BrokerTimeout):
        await task
    assert len(sim.snapshot_positions()) == 1


async def test_stale_positions_answers_an_old_list_once(sim: SimBroker) -> None:
    opened = await sim.open_position(buy("R1", 1.0))
    sim.stale_positions()
    await sim.close_position(sell_close("C1", opened.deal_id, 1.0))
    await sim.open_position(buy("R2", 1.0))

    stale = await sim.positions()
    fresh = await sim.positions()
    assert [p.deal_reference for p in stale] == ["R1"]
    assert [p.deal_reference for p in fresh] == ["R2"]


async def test_duplicate_deal_id_corrupts_one_answer_not_the_truth(sim: SimBroker) -> None:
    first = await sim.open_position(buy("R1", 1.0))
    sim.duplicate_deal_id(OPEN_POSITION)
    second = await sim.open_position(buy("R2", 1.0))

    assert second.deal_id == first.deal_id  # the answer names an earlier deal
    truth = {p.deal_reference: p.deal_id for p in sim.snapshot_positions()}
    assert truth == {"R1": "DIAAAA000000001", "R2": "DIAAAA000000002"}
    assert (await sim.confirm("R2")).deal_id == "DIAAAA000000002"


async def test_duplicate_deal_id_on_confirm_lookup_with_explicit_id(sim: SimBroker) -> None:
    await sim.open_position(buy("R1", 1.0))
    sim.duplicate_deal_id(CONFIRM, "DIAAAA000000777")
    assert (await sim.confirm("R1")).deal_id == "DIAAAA000000777"
    assert (await sim.confirm("R1")).deal_id == "DIAAAA000000001"


async def test_heal_disarms_seams_and_releases_pending(sim: SimBroker) -> None:
    sim.hold(OPEN_POSITION)
    task = asyncio.create_task(sim.open_position(buy("R1")))
    await asyncio.sleep(0)
    sim.fail_next(OPEN_POSITION, BrokerTimeout("x"))
    sim.fill_fraction(0.5)
    sim.stale_positions()

    sim.heal()
    assert (await task).size == 2.0  # released, and executed after the fraction was disarmed
    assert (await sim.open_position(buy("R2"))).status == ACCEPTED
    assert len(await sim.positions()) == 2
    assert sim.pending == ()
