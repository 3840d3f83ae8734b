"""The `TradeStream` port: IG's trade events and the stream's connection status.

IG pushes trade events over Lightstreamer on the item `TRADE:{accountId}` with the fields
CONFIRMS (the verdict on one deal reference), OPU (one change of one open position) and WOU
(working orders, which this engine does not place). The payloads carry no sequence number, so
a gap can never be seen in the data: it can only be inferred from what the connection did.
That is why the port reports connection status as carefully as it reports events.

Contract for an adapter:
- `start(listener)` begins delivery; `stop()` ends it, after which no listener method is
  called again.
- Every listener method is called on the engine's event loop thread, never on a library
  thread: an adapter whose client runs callbacks elsewhere moves them across explicitly.
- `on_status` is called on every connection change. A `CONNECTED` status names its session:
  a session id the engine has not seen before means a new session, whose replay of recent
  history may be shorter (a gap) or longer (duplicates) than what was missed.
- `on_subscribed` is called on every confirmation of the TRADE subscription; a second one
  on the same session means the subscription was re-sent and events may have been missed.
  So a session's CONNECTED status comes before its first `on_subscribed`: the other order
  reads as a repeated subscription, and the engine stays blind until its next reconcile.
- `on_keepalive` is called whenever the connection proves it is alive without an event.
  Silence is measured by the engine on its Clock from the last event or keepalive.
- `on_update` is called once per payload the adapter parsed completely. A payload that does
  not parse is reported with `on_protocol_error`, never as a partial update.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs

CONFIRMS = "CONFIRMS"
OPU = "OPU"
CHANNELS = (CONFIRMS, OPU)

# OPU status of the position after the change.
POSITION_OPEN = "OPEN"
POSITION_UPDATED = "UPDATED"
POSITION_DELETED = "DELETED"
POSITION_STATUSES = (POSITION_OPEN, POSITION_UPDATED, POSITION_DELETED)


class StreamState(enum.StrEnum):
    CONNECTED = "CONNECTED"
    STALLED = "STALLED"  # the session is up but the server has gone quiet
    DISCONNECTED = "DISCONNECTED"  # trying to recover the session, or to start a new one


@attrs.frozen
class StreamStatus:
    """One connection change. `session_id` names the session a CONNECTED status runs on."""

    state: StreamState
    session_id: str | None = None
    detail: str = ""


@attrs.frozen
class TradeUpdate:
    """One CONFIRMS or OPU payload, parsed.

    CONFIRMS: `deal_status` is ACCEPTED or REJECTED, `size` what was filled, `status` None.
    OPU: `status` is OPEN, UPDATED or DELETED and `size` the position's size after the change
    (0 when DELETED); `deal_reference` is the reference of the order that made the change.
    """

    channel: str
    deal_reference: str
    deal_id: str | None
    deal_status: str
    epic: str
    direction: str
    size: float
    status: str | None = None
    deal_id_origin: str | None = None
    level: float | None = None
    timestamp: float | None = None
    reason: str = ""


class StreamProtocolError(Exception):
    """A payload or status the adapter could not read. Nothing of it was applied."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StreamListener(Protocol):
    def on_update(self, update: TradeUpdate) -> None: ...

    def on_status(self, status: StreamStatus) -> None: ...

    def on_subscribed(self) -> None: ...

    def on_keepalive(self) -> None: ...

    def on_protocol_error(self, error: StreamProtocolError) -> None: ...


class TradeStream(Protocol):
    def start(self, listener: StreamListener) -> None: ...

    def stop(self) -> None: ...
