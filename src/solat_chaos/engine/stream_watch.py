"""The engine's listener on its trade stream: what the stream proves, and when it proves nothing.

IG's trade events carry no sequence number, so a gap is inferred from the connection alone.
The stream is **blind** from the moment a status change could hide a gap (stalled,
disconnected, a new session, a repeated subscription, an unreadable payload) or it has been
silent past its threshold (on the Clock), until it is live again (connected and subscribed)
*and* a reconcile that started while it was live has succeeded.

Events are compared with the book by identity (deal reference, deal id, status, size); OPU's
size is the position's size after the change. An event the book already agrees with changes
nothing, however often it arrives. The only events written are the broker's verdicts on the
engine's own orders that are in doubt (not awaiting a REST answer), resolved exactly as the
reconciler resolves them; anything else that disagrees with the book is evidence for a
reconcile (`reconcile_due`), never written over it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from solat_chaos.engine.broker import ACCEPTED, REJECTED, DealConfirm
from solat_chaos.engine.clock import Clock
from solat_chaos.engine.journal import Journal
from solat_chaos.engine.positions import normal_size
from solat_chaos.engine.reconciler import Reconciler
from solat_chaos.engine.records import OPEN, Confirmed, Intent, Rejected
from solat_chaos.engine.stream import (
    CONFIRMS,
    OPU,
    POSITION_DELETED,
    POSITION_OPEN,
    StreamProtocolError,
    StreamState,
    StreamStatus,
    TradeUpdate,
)

NOT_CONNECTED = "stream not connected yet"


@attrs.frozen
class ReconcileStart:
    """What the stream was when a reconcile started: the gap it could cover, and whether
    the stream was live then (a reconcile started while blind proves nothing about later)."""

    gap: int
    live: bool


class StreamWatch:
    """A `StreamListener`. `silence` is the keepalive threshold in seconds."""

    def __init__(
        self,
        journal: Journal,
        reconciler: Reconciler,
        in_flight: set[str],
        clock: Clock,
        *,
        silence: float,
        on_book_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._journal = journal
        self._reconciler = reconciler
        self._in_flight = in_flight
        self._clock = clock
        self.silence = silence
        self._on_book_change = on_book_change
        self.state: StreamState | None = None
        self.session_id: str | None = None
        self._sessions: set[str] = set()
        self._subscribed = False
        self.last_seen: float | None = None  # monotonic: last event, keepalive or status
        self.last_event_at: float | None = None  # wall time of the last event, for backfill
        self._gap = 0  # counts every moment a gap could have opened
        self.blind_reason: str | None = NOT_CONNECTED
        self.reconcile_due = False
        self.events = 0

    # -- what the engine asks ------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.state is StreamState.CONNECTED and self._subscribed

    def blind(self) -> str | None:
        """Why the stream is blind now, or None when it proves every change. A pure read."""
        return self.blind_reason or self._silence()

    def age(self) -> float | None:
        """Seconds since the stream last proved it was alive; None if it never did."""
        if self.last_seen is None:
            return None
        return self._clock.monotonic() - self.last_seen

    def reconcile_starting(self) -> ReconcileStart:
        self._check_silence()
        self.reconcile_due = False
        return ReconcileStart(self._gap, self.live)

    def reconcile_succeeded(self, start: ReconcileStart) -> None:
        """Blindness ends when a reconcile that started live, with no gap since, succeeded."""
        self._check_silence()
        if start.live and start.gap == self._gap and self.live:
            self.blind_reason = None

    # -- StreamListener --------------------------------------------------------------------

    def on_status(self, status: StreamStatus) -> None:
        self._check_silence()
        self._seen()
        if status.state is StreamState.CONNECTED:
            if status.session_id is None or status.session_id not in self._sessions:
                self._sessions.add(status.session_id)
                self._subscribed = False
                self._go_blind(
                    f"new stream session {status.session_id}: its replay may not cover the gap"
                )
            self.session_id = status.session_id
            self.state = status.state
            return
        self.state = status.state
        detail = f": {status.detail}" if status.detail else ""
        self._go_blind(f"stream {status.state.value.lower()}{detail}")

    def on_subscribed(self) -> None:
        self._check_silence()
        self._seen()
        if self._subscribed:
            self._go_blind("trade subscription confirmed again: events may have been missed")
        self._subscribed = True

    def on_keepalive(self) -> None:
        self._check_silence()
        self._seen()

    def on_protocol_error(self, error: StreamProtocolError) -> None:
        self._check_silence()
        self._seen()
        self._go_blind(f"unreadable stream payload, an event may be lost: {error}")

    def on_update(self, update: TradeUpdate) -> None:
        self._check_silence()
        self._seen()
        self.events += 1
        at = update.timestamp if update.timestamp is not None else self._clock.now()
        self.last_event_at = at if self.last_event_at is None else max(self.last_event_at, at)
        if update.channel == CONFIRMS:
            self._on_confirm(update)
        elif update.channel == OPU:
            self._on_position_update(update)

    # -- events, by identity ---------------------------------------------------------------

    def _on_confirm(self, update: TradeUpdate) -> None:
        audit = self._journal.audit
        reference = update.deal_reference
        if reference not in audit.intents:
            return  # not an order of this engine: its OPU tells the book what changed
        if audit.has_outcome(reference):
            if not self._agrees_with_outcome(update):
                self.reconcile_due = True
            return
        self._resolve_in_doubt(audit.intents[reference], update)

    def _on_position_update(self, update: TradeUpdate) -> None:
        position = self._journal.book.get(update.deal_id or "")
        if update.status == POSITION_DELETED:
            agrees = position is None
        else:
            agrees = position is not None and position.size == normal_size(update.size)
        if agrees:
            return
        intent = self._journal.audit.intents.get(update.deal_reference)
        # The open's own event: the position's size at its opening is what was filled.
        own_open = update.status == POSITION_OPEN and intent is not None and intent.action == OPEN
        if not (own_open and self._resolve_in_doubt(intent, update)):
            self.reconcile_due = True

    def _resolve_in_doubt(self, intent: Intent, update: TradeUpdate) -> bool:
        """Resolve `intent` from the broker's verdict if it is in doubt (unresolved and not
        awaiting its REST answer); whether the event settled it."""
        reference = intent.deal_reference
        if self._journal.audit.has_outcome(reference) or reference in self._in_flight:
            return False
        verdict = DealConfirm(
            deal_reference=reference,
            status=ACCEPTED if update.deal_status == ACCEPTED else REJECTED,
            deal_id=update.deal_id,
            epic=update.epic,
            direction=update.direction,
            size=update.size,
            level=update.level,
            reason=update.reason,
        )
        record = self._reconciler.resolution_by(intent, verdict, self._clock.now(), "stream")
        if record is None:
            self.reconcile_due = True
            return False
        self._journal.record_outcome(record)
        if not isinstance(record, Rejected):
            self._on_book_change()
        return True

    def _agrees_with_outcome(self, update: TradeUpdate) -> bool:
        outcome = self._journal.audit.outcomes[update.deal_reference]
        if update.deal_status == ACCEPTED:
            return isinstance(outcome, Confirmed) and outcome.deal_id == update.deal_id
        return isinstance(outcome, Rejected)

    # -- blindness ---------------------------------------------------------------------------

    def _seen(self) -> None:
        self.last_seen = self._clock.monotonic()

    def _silence(self) -> str | None:
        """Why a connected stream counts as blind for its silence alone, if it does."""
        # The state asked first: this runs before every listener call, and a keepalive
        # arrives every few seconds of the clock.
        if self.state is not StreamState.CONNECTED:
            return None
        age = self.age()
        if age is not None and age > self.silence:
            return f"stream silent for {age:g}s (keepalive threshold {self.silence:g}s)"
        return None

    def _check_silence(self) -> None:
        """Silence past the threshold is a gap, kept as one even when the stream speaks again:
        checked before every listener call and around every reconcile."""
        if reason := self._silence():
            self._go_blind(reason)

    def _go_blind(self, reason: str) -> None:
        """A gap may have opened. Going blind asks for a reconcile at once; while blind
        already, the short poll is soon enough."""
        if self.blind_reason is None:
            self.reconcile_due = True
        self._gap += 1
        self.blind_reason = reason
