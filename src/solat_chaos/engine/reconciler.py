"""The reconciler: brings the local book back to the broker's truth, with evidence.

1. Every unresolved intent (not awaiting an answer in this process) is looked up by its deal
   reference: the confirm, then (in a backfill) the activity history, then the positions list.
2. The book is diffed against the broker's positions; drift is repaired with ADOPTED,
   CLOSED_EXTERNALLY and RESIZED records. A repair sets the book to what the broker holds,
   so a reconcile replayed after a crash finds no drift left to repair: nothing is added
   twice. Repair ids name kind, deal and the ledger position they were derived from.

Every broker read happens before anything is written: a failed or timed-out read changes
nothing locally (a missing answer is not a flat position). The positions list is read twice
and must agree with itself: a stale list served once (a lagging cache) would otherwise close
live positions. Orders that are in flight, or that changed the book while the broker was
being read, are left for the next reconcile.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from solat_chaos.engine.broker import (
    ACCEPTED,
    POSITION_OPENED,
    BrokerActivity,
    BrokerError,
    BrokerPosition,
    DealConfirm,
)
from solat_chaos.engine.broker_link import BrokerLink
from solat_chaos.engine.clock import Clock
from solat_chaos.engine.journal import Journal
from solat_chaos.engine.positions import normal_size
from solat_chaos.engine.records import (
    OPEN,
    Adopted,
    ClosedExternally,
    Confirmed,
    Intent,
    Record,
    Rejected,
    Resized,
)


class UnstablePositions(BrokerError):
    """Two reads of the positions list disagreed: one of them may be stale."""


@attrs.frozen
class ReconcileReport:
    """`ok` only when every broker read succeeded and every repair is durable."""

    ok: bool
    error: str | None = None
    records: tuple[Record, ...] = ()
    deferred: tuple[str, ...] = ()  # deal references and ids left for the next reconcile


class Reconciler:
    def __init__(
        self,
        journal: Journal,
        link: BrokerLink,
        clock: Clock,
        in_flight: set[str],
        *,
        in_doubt_grace: float,
        on_book_change: Callable[[], None] = lambda: None,
    ):
        self._in_doubt_grace = in_doubt_grace
        self._on_book_change = on_book_change
        self._journal = journal
        self._link = link
        self._clock = clock
        self._in_flight = in_flight

    async def reconcile(self, *, activity_since: float | None = None) -> ReconcileReport:
        """`activity_since` (epoch seconds) makes it a backfill: the activity history since
        then is read too, evidence for orders whose confirm the broker no longer has."""
        audit, book = self._journal.audit, self._journal.book
        to_resolve = [i for i in audit.unresolved() if i.deal_reference not in self._in_flight]
        try:
            confirms = {
                i.deal_reference: await self._link.confirm(i.deal_reference) for i in to_resolve
            }
            activity = [] if activity_since is None else await self._link.activity(activity_since)
            version = book.version
            broker_positions = await self._broker_positions()
        except BrokerError as e:
            return ReconcileReport(
                False, f"broker read failed, nothing changed: {type(e).__name__}: {e}"
            )
        # Only other tasks can have changed the book so far; what we write next is ours.
        changed_while_reading = book.changed_since(version)
        now = self._clock.now()
        records: list[Record] = []
        for intent in to_resolve:
            if audit.has_outcome(intent.deal_reference):
                continue  # resolved while we read the broker
            record = self._resolution(
                intent, confirms[intent.deal_reference], activity, broker_positions, now
            )
            if record is None:
                continue
            records.append(record)
            self._journal.record_outcome(record)
        repairs, deferred = self._repairs(broker_positions, changed_while_reading, now)
        for record in repairs:
            records.append(record)
            self._journal.record_outcome(record)
        if any(not isinstance(r, Rejected) for r in records):
            self._on_book_change()
        if self._journal.pending:
            # Like an order's outcome, evidence the disk refused is kept, applied, and
            # written in order once it can be: recomputing it later could contradict it.
            return ReconcileReport(
                False,
                f"ledger not writable, {len(self._journal.pending)} record(s) pending: "
                f"{self._journal.last_write_error}",
                tuple(records),
                deferred,
            )
        return ReconcileReport(True, None, tuple(records), deferred)

    async def _broker_positions(self) -> list[BrokerPosition]:
        """The positions list, read twice; raises if the two reads disagree."""
        first = await self._link.positions()
        second = await self._link.positions()
        if _by_deal(first) != _by_deal(second):
            raise UnstablePositions("positions list changed between two reads (stale or moving)")
        return second

    def resolution_by(
        self, intent: Intent, confirm: DealConfirm, now: float, source: str
    ) -> Record | None:
        """The outcome a confirm proves for `intent` (from `source`), or None if it proves
        nothing about it."""
        if not self._is_evidence_for(intent, confirm):
            return None
        if confirm.status == ACCEPTED:
            return self._fill(
                intent, confirm.deal_id, min(confirm.size, intent.size), confirm.level, now, source
            )
        return Rejected(intent.deal_reference, source, f"broker rejected: {confirm.reason}", now)

    def _resolution(
        self,
        intent: Intent,
        confirm: DealConfirm | None,
        activity: list[BrokerActivity],
        broker_positions: list[BrokerPosition],
        now: float,
    ) -> Record | None:
        """The outcome the broker's evidence proves, or None while it proves nothing yet."""
        reference = intent.deal_reference
        if confirm is not None and (found := self.resolution_by(intent, confirm, now, "reconcile")):
            return found
        for deal in activity:
            if deal.deal_reference == reference and self._activity_is_evidence_for(intent, deal):
                size = min(deal.size, intent.size)
                return self._fill(intent, deal.deal_id, size, deal.level, now, "reconcile")
        held = [p for p in broker_positions if p.deal_reference == reference]
        if intent.action == OPEN and held:
            return self._fill(
                intent,
                held[0].deal_id,
                min(held[0].size, intent.size),
                held[0].level,
                now,
                "reconcile",
            )
        if now - intent.at < self._in_doubt_grace:
            # A missing report is not a flat position: the request may still be on its way.
            return None
        return Rejected(
            reference,
            "reconcile",
            f"the broker has no record of this deal reference {self._in_doubt_grace:g}s on",
            now,
        )

    def _is_evidence_for(self, intent: Intent, confirm: DealConfirm) -> bool:
        """A confirm naming another deal than the order's proves nothing about the order: an
        opening confirm naming a deal another order opened, or a close naming another deal."""
        if confirm.status != ACCEPTED:
            return True
        if not confirm.deal_id:
            return False
        if intent.action == OPEN:
            return not self._journal.book.has_filled(confirm.deal_id)
        return confirm.deal_id == intent.deal_id

    def _activity_is_evidence_for(self, intent: Intent, deal: BrokerActivity) -> bool:
        """An activity proves an opening fill if it opened a deal the book never held, a
        closing fill if it closed the order's deal."""
        if deal.size <= 0:
            return False
        if intent.action == OPEN:
            return deal.action == POSITION_OPENED and not self._journal.book.has_filled(
                deal.deal_id
            )
        return deal.action != POSITION_OPENED and deal.deal_id == intent.deal_id

    @staticmethod
    def _fill(
        intent: Intent, deal_id: str, size: float, level: float | None, now: float, source: str
    ) -> Confirmed:
        return Confirmed(
            deal_reference=intent.deal_reference,
            action=intent.action,
            deal_id=deal_id,
            epic=intent.epic,
            direction=intent.direction,
            filled_size=size,
            at=now,
            level=level,
            resolved_by=source,
        )

    def _repairs(
        self, broker_positions: list[BrokerPosition], changed_while_reading: set[str], now: float
    ) -> tuple[list[Record], tuple[str, ...]]:
        book, audit = self._journal.book, self._journal.audit
        unresolved = audit.unresolved()
        unresolved_references = {i.deal_reference for i in unresolved}
        closing = {i.deal_id for i in unresolved if i.deal_id is not None}
        deferred = sorted(unresolved_references | closing | changed_while_reading)
        skip = set(deferred)
        broker = {p.deal_id: p for p in broker_positions}
        # A repair's id names its kind, its deal and the ledger it was derived from: the same
        # record written twice (a retried write) applies once, while the same drift found
        # again later, from a later ledger, is repaired again.
        basis = self._journal.ledger.last_seq
        repairs: list[Record] = []
        for deal_id, position in sorted(book.positions().items()):
            if deal_id in skip:
                continue
            theirs = broker.get(deal_id)
            if theirs is None:
                repairs.append(
                    ClosedExternally(f"CLOSED_EXTERNALLY:{deal_id}@{basis}", deal_id, now)
                )
            elif (size := normal_size(theirs.size)) != position.size:
                repairs.append(Resized(f"RESIZED:{deal_id}@{basis}", deal_id, size, now))
        for deal_id, theirs in sorted(broker.items()):
            if deal_id in skip or theirs.deal_reference in skip or book.get(deal_id) is not None:
                continue
            repairs.append(
                Adopted(
                    f"ADOPTED:{deal_id}@{basis}",
                    deal_id,
                    theirs.deal_reference,
                    theirs.epic,
                    theirs.direction,
                    theirs.size,
                    now,
                )
            )
        return repairs, tuple(deferred)


def _by_deal(positions: list[BrokerPosition]) -> dict[str, BrokerPosition]:
    return {p.deal_id: p for p in positions}
