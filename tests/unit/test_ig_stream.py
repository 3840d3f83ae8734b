"""IGTradeStream on the real `lightstreamer-client-lib` against the SimBroker's TLCP server on
loopback: what the adapter tells the engine when the wire works, stalls, recovers, starts a
new session, drops an update, ends with a server error, or carries a malformed payload. And
the strict parsers and the status table on their own."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solat_chaos.broker.ig_http import DEFAULT_ACCOUNT_ID
from solat_chaos.broker.ig_stream import (
    UnsupportedClient,
    keepalive_state,
    parse_confirms,
    parse_opu,
    status_of,
)
from solat_chaos.engine.broker import BUY, SELL, CloseOrder, OpenOrder
from solat_chaos.engine.stream import (
    CONFIRMS,
    OPU,
    StreamProtocolError,
    StreamState,
    StreamStatus,
)
from tests.engine_process import EngineProcess
from tests.stream_wire import LIBRARY_WARNINGS, RecordingListener, Wire, open_wire, until

pytestmark = pytest.mark.filterwarnings(LIBRARY_WARNINGS)

EPIC = "CS.D.GBPUSD.TODAY.IP"

VALID_CONFIRMS = {
    "dealReference": "REF1",
    "dealId": "DIAAAA000000001",
    "dealStatus": "ACCEPTED",
    "epic": EPIC,
    "direction": "BUY",
    "size": 1.5,
    "level": 1.25,
    "reason": "SUCCESS",
    "date": "2026-12-02T00:00:01.500",
    "status": "OPEN",
}
VALID_OPU = {
    "dealReference": "REF1",
    "dealId": "DIAAAA000000001",
    "dealIdOrigin": "DIAAAA000000001",
    "dealStatus": "ACCEPTED",
    "status": "UPDATED",
    "size": 0.5,
    "level": 1.25,
    "epic": EPIC,
    "direction": "BUY",
    "timestamp": "2026-12-02T00:00:01.500",
}
CONFIRMS_REQUIRED = ("dealReference", "dealStatus", "epic", "direction", "dealId", "size")
OPU_REQUIRED = ("dealReference", "dealId", "dealStatus", "status", "epic", "direction", "size")


# ---------------------------------------------------------------------- parsing, no wire


def test_a_valid_confirms_and_opu_parse_in_full() -> None:
    confirm = parse_confirms(json.dumps(VALID_CONFIRMS))
    assert (confirm.channel, confirm.deal_reference, confirm.deal_id) == (
        CONFIRMS,
        "REF1",
        "DIAAAA000000001",
    )
    assert (confirm.deal_status, confirm.size, confirm.level) == ("ACCEPTED", 1.5, 1.25)
    assert confirm.timestamp == pytest.approx(1_796_169_601.5)
    position = parse_opu(json.dumps(VALID_OPU))
    assert (position.channel, position.status, position.size) == (OPU, "UPDATED", 0.5)
    assert position.deal_id_origin == "DIAAAA000000001"


def test_a_rejected_confirm_filled_nothing_and_keeps_its_reason() -> None:
    body = VALID_CONFIRMS | {
        "dealStatus": "REJECTED",
        "dealId": None,
        "reason": "INSUFFICIENT_FUNDS",
    }
    confirm = parse_confirms(json.dumps(body))
    assert (confirm.size, confirm.deal_id, confirm.reason) == (0.0, None, "INSUFFICIENT_FUNDS")


def test_a_deleted_position_has_size_zero() -> None:
    assert parse_opu(json.dumps(VALID_OPU | {"status": "DELETED", "size": 0})).size == 0.0


_NOT_A_STRING = st.sampled_from([None, "", 1, True, [], {}])
_NOT_AN_ENUM = st.sampled_from([None, "", "not-an-enum", 1, "open"])
_NOT_A_SIZE = st.sampled_from([None, "1", True, 0, -1, float("nan"), float("inf"), []])
BAD = {
    "dealReference": _NOT_A_STRING,
    "dealId": _NOT_A_STRING,
    "epic": _NOT_A_STRING,
    "dealStatus": _NOT_AN_ENUM,
    "status": _NOT_AN_ENUM,
    "direction": _NOT_AN_ENUM,
    "size": _NOT_A_SIZE,
}


@given(channel=st.sampled_from([CONFIRMS, OPU]), data=st.data(), drop=st.booleans())
def test_a_malformed_payload_is_a_protocol_error_naming_its_field(
    channel: str, data: st.DataObject, drop: bool
) -> None:
    valid, required, parse = (
        (VALID_CONFIRMS, CONFIRMS_REQUIRED, parse_confirms)
        if channel == CONFIRMS
        else (VALID_OPU, OPU_REQUIRED, parse_opu)
    )
    field = data.draw(st.sampled_from(required))
    body = dict(valid)
    if drop:
        del body[field]
    else:
        body[field] = data.draw(BAD[field])
    # NaN and infinity are not JSON; IG's encoder would write them as these tokens.
    with pytest.raises(StreamProtocolError) as caught:
        parse(json.dumps(body))
    assert caught.value.field == field


@pytest.mark.parametrize(
    "raw", ["", "not json", "[1, 2]", "null", '"OPEN"', '{"dealReference": "REF1"']
)
@pytest.mark.parametrize("parse", [parse_confirms, parse_opu])
def test_a_payload_that_is_not_a_json_object_is_a_protocol_error(raw: str, parse) -> None:
    with pytest.raises(StreamProtocolError) as caught:
        parse(raw)
    assert caught.value.field is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("CONNECTED:WS-STREAMING", StreamState.CONNECTED),
        ("CONNECTED:HTTP-STREAMING", StreamState.CONNECTED),
        ("CONNECTED:WS-POLLING", StreamState.CONNECTED),
        ("CONNECTED:HTTP-POLLING", StreamState.CONNECTED),
        ("CONNECTED:STREAM-SENSING", StreamState.DISCONNECTED),
        ("CONNECTING", StreamState.DISCONNECTED),
        ("STALLED", StreamState.STALLED),
        ("DISCONNECTED:TRYING-RECOVERY", StreamState.DISCONNECTED),
        ("DISCONNECTED:WILL-RETRY", StreamState.DISCONNECTED),
        ("DISCONNECTED", StreamState.DISCONNECTED),
    ],
)
def test_every_client_status_has_a_port_state(status: str, state: StreamState) -> None:
    mapped = status_of(status, "S1")
    assert mapped.state is state
    assert mapped.detail == status
    assert (mapped.session_id == "S1") == (state is not StreamState.DISCONNECTED)


def test_an_unknown_client_status_is_a_protocol_error() -> None:
    with pytest.raises(StreamProtocolError):
        status_of("CONNECTED:CARRIER-PIGEON", "S1")


# ---------------------------------------------------------------------- on the wire


async def _live(listener: RecordingListener) -> None:
    await until(lambda: listener.connected_sessions(), "a CONNECTED status")
    await until(lambda: listener.count("subscribed") >= 1, "the subscription")


@asynccontextmanager
async def live_stream(**wire_options: Any) -> AsyncIterator[tuple[Wire, RecordingListener]]:
    """A wire whose stream is started, connected and subscribed, with its listener."""
    async with open_wire(**wire_options) as wire:
        listener = RecordingListener()
        wire.stream.start(listener)
        await _live(listener)
        yield wire, listener


async def test_the_stream_connects_subscribes_and_delivers_fills_on_the_engine_thread() -> None:
    async with live_stream() as (wire, listener):
        assert listener.connected_sessions() == wire.tlcp.session_ids
        assert listener.statuses[-1].detail == "CONNECTED:HTTP-STREAMING"
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 2.0))
        await until(lambda: len(listener.updates) == 2, "the open's CONFIRMS and OPU")
        confirm, position = listener.updates
        assert (confirm.channel, confirm.deal_reference, confirm.deal_status) == (
            CONFIRMS,
            "REF1",
            "ACCEPTED",
        )
        assert (confirm.size, confirm.direction, confirm.epic) == (2.0, BUY, EPIC)
        deal_id = wire.sim.snapshot_positions()[0].deal_id
        assert (position.channel, position.status, position.deal_id, position.size) == (
            OPU,
            "OPEN",
            deal_id,
            2.0,
        )
        await until(lambda: listener.count("keepalive") >= 2, "keepalives while connected")
    assert listener.threads == {threading.get_ident()}
    assert listener.count("protocol_error") == 0


async def test_dashboard_deals_and_a_partial_close_arrive_as_opu_changes() -> None:
    async with live_stream() as (wire, listener):
        external = wire.sim.open_externally(EPIC, SELL, 3.0)
        await wire.rest.close_position(CloseOrder("REF2", external.deal_id, BUY, 1.0))
        wire.sim.close_externally(external.deal_id)
        await until(
            lambda: (
                [u.status for u in listener.updates if u.channel == OPU]
                == ["OPEN", "UPDATED", "DELETED"]
            ),
            "OPEN, UPDATED and DELETED",
        )
        sizes = [u.size for u in listener.updates if u.channel == OPU]
        assert sizes == [3.0, 2.0, 0.0]


async def test_a_stall_that_resumes_keeps_the_session_and_delivers_what_waited() -> None:
    async with live_stream() as (wire, listener):
        session = listener.connected_sessions()[-1]
        wire.tlcp.pause()
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: listener.statuses[-1].state is StreamState.STALLED, "STALLED")
        assert listener.updates == []
        wire.tlcp.resume()
        await until(lambda: len(listener.updates) == 2, "the held updates")
        assert listener.statuses[-1] == StreamStatus(StreamState.CONNECTED, session, "stall ended")
        assert "DISCONNECTED:TRYING-RECOVERY" not in [s.detail for s in listener.statuses]
        assert set(listener.connected_sessions()) == {session}
        assert listener.count("subscribed") == 1
        assert wire.tlcp.sessions_created == 1


async def test_a_silent_socket_is_noticed_and_the_session_recovered_once() -> None:
    async with live_stream() as (wire, listener):
        session = listener.connected_sessions()[-1]
        wire.tlcp.silence()
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: len(listener.updates) == 2, "the updates, by the recovery")
        await until(lambda: listener.statuses[-1].state is StreamState.CONNECTED, "CONNECTED")
        details = [s.detail for s in listener.statuses]
        assert details.index("STALLED") < details.index("DISCONNECTED:TRYING-RECOVERY")
        assert set(listener.connected_sessions()) == {session}
        assert wire.tlcp.recoveries >= 1
        assert [u.deal_reference for u in listener.updates] == ["REF1", "REF1"]


async def test_a_silent_socket_whose_session_is_lost_comes_back_as_a_new_session() -> None:
    async with live_stream(replay=0) as (wire, listener):
        first = listener.connected_sessions()[-1]
        wire.tlcp.silence(recoverable=False)
        wire.sim.open_externally(EPIC, BUY, 1.0)
        await until(lambda: len(set(listener.connected_sessions())) == 2, "a new session")
        await until(lambda: listener.count("subscribed") == 2, "the new subscription")
        assert listener.connected_sessions()[-1] != first
        assert "STALLED" in [s.detail for s in listener.statuses]
        # Nothing replays the fill made while the socket was silent: only REST can.
        assert listener.updates == []


async def test_a_new_session_is_a_new_session_id_and_a_repeated_subscription() -> None:
    async with live_stream(replay=2) as (wire, listener):
        first = listener.connected_sessions()[-1]
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: len(listener.updates) == 2, "the first open")
        wire.tlcp.new_session()
        await until(lambda: len(set(listener.connected_sessions())) == 2, "a second session")
        await until(lambda: listener.count("subscribed") == 2, "the re-sent subscription")
        assert "DISCONNECTED:WILL-RETRY" in [s.detail for s in listener.statuses]
        assert listener.connected_sessions()[-1] != first
        # The new session's snapshot replays the 2 most recent updates again: duplicates.
        await until(lambda: len(listener.updates) == 4, "the replayed history")
        assert listener.updates[2:] == listener.updates[:2]


async def test_a_dropped_update_is_never_delivered_while_keepalives_go_on() -> None:
    async with live_stream() as (wire, listener):
        wire.tlcp.drop_next_update()
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: len(listener.updates) == 1, "the update that was not dropped")
        keepalives = listener.count("keepalive")
        await until(lambda: listener.count("keepalive") >= keepalives + 3, "keepalives")
        assert [u.channel for u in listener.updates] == [OPU]
        assert len(wire.tlcp.dropped) == 1
        assert {s.state for s in listener.statuses} == {
            StreamState.DISCONNECTED,
            StreamState.CONNECTED,
        }
        assert listener.statuses[-1].state is StreamState.CONNECTED


async def test_a_server_error_disconnects_and_the_adapter_starts_a_new_session() -> None:
    async with live_stream() as (wire, listener):
        wire.tlcp.end_with_error(31, "closed by the administrator")
        await until(
            lambda: any("server error 31" in s.detail for s in listener.statuses),
            "the server error",
        )
        assert wire.stream.server_errors == [(31, "closed by the administrator")]
        await until(lambda: len(set(listener.connected_sessions())) == 2, "a new session")
        await until(lambda: listener.count("subscribed") == 2, "the new subscription")


async def test_a_cleared_snapshot_is_reported_as_a_repeated_subscription() -> None:
    async with live_stream() as (wire, listener):
        wire.tlcp.clear_snapshot()
        await until(lambda: listener.count("subscribed") == 2, "the cleared snapshot")
        assert len(set(listener.connected_sessions())) == 1


async def test_updates_the_server_says_it_lost_are_a_protocol_error() -> None:
    async with live_stream() as (wire, listener):
        wire.tlcp.lose_updates(3)
        await until(lambda: listener.count("protocol_error") == 1, "the lost updates")
        assert "lost 3 updates" in str(listener.of("protocol_error")[0])


async def test_a_malformed_payload_is_a_protocol_error_and_the_stream_goes_on() -> None:
    async with live_stream() as (wire, listener):
        wire.tlcp.send_raw({"CONFIRMS": "<html>oops</html>"})
        wire.tlcp.send_raw({"OPU": json.dumps({k: v for k, v in VALID_OPU.items() if k != "size"})})
        await until(lambda: listener.count("protocol_error") == 2, "two protocol errors")
        errors = listener.of("protocol_error")
        assert [e.field for e in errors] == [None, "size"]
        assert listener.updates == []
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: len(listener.updates) == 2, "the next good updates")


async def test_after_stop_the_listener_hears_nothing_more() -> None:
    async with live_stream() as (wire, listener):
        wire.stream.stop()
        heard = len(listener.calls)
        await wire.rest.open_position(OpenOrder("REF1", EPIC, BUY, 1.0))
        await until(lambda: wire.tlcp.open_streams == 0, "the stream to close")
        assert len(listener.calls) == heard


async def test_the_stream_logs_in_with_the_rest_session_tokens() -> None:
    async with open_wire() as wire:
        credentials = await wire.rest.streaming_credentials()
        assert credentials.endpoint == wire.server.base_url
        assert credentials.account_id == DEFAULT_ACCOUNT_ID
        assert wire.server.app.state.ig.sessions[credentials.cst] == credentials.security_token
        listener = RecordingListener()
        wire.stream.start(listener)
        await _live(listener)
        assert wire.server.app.state.ig.logins == 1


async def test_refused_stream_tokens_are_a_server_error_and_a_fresh_login_follows() -> None:
    async with open_wire() as wire:
        await wire.rest.streaming_credentials()
        wire.server.app.state.ig.expire_sessions()
        listener = RecordingListener()
        wire.stream.start(listener)
        await _live(listener)
        assert wire.stream.server_errors[0][0] == 1  # CONERR 1: user/password check failed
        assert any("server error 1" in s.detail for s in listener.statuses)
        assert wire.server.app.state.ig.logins == 2


def test_a_client_without_the_keepalive_state_is_refused() -> None:
    with pytest.raises(UnsupportedClient):
        keepalive_state(object())


async def test_started_where_no_loop_runs_the_stream_connects_at_attach() -> None:
    async with open_wire() as wire:
        listener = RecordingListener()
        starter = threading.Thread(target=wire.stream.start, args=(listener,))
        starter.start()
        starter.join(5.0)
        assert wire.tlcp.sessions_created == 0 and listener.calls == []
        wire.stream.attach()
        await _live(listener)
    assert listener.threads == {threading.get_ident()}


def test_serve_on_the_embedded_broker_runs_its_trade_stream_over_the_wire(tmp_path) -> None:
    engine = EngineProcess(tmp_path / "data")
    try:
        engine.start()
        engine.wait_for(
            lambda health: health["stream"] == "CONNECTED" and health["blind"] is None,
            "had a live trade stream, reconciled since it connected",
        )
    finally:
        engine.stop_all()
