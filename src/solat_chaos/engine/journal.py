"""The journal keeps the ledger and its folds (position book, audit trail) in step, and
holds outcomes the disk refused until it accepts them again — nothing is silently lost."""

from __future__ import annotations

from solat_chaos.engine.audit import AuditTrail
from solat_chaos.engine.ledger import Ledger, LedgerWriteError
from solat_chaos.engine.positions import PositionBook
from solat_chaos.engine.records import Record


class Journal:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.book = PositionBook()
        self.audit = AuditTrail()
        self.pending: list[Record] = []
        self.last_write_error: str | None = None
        for entry in ledger.entries:
            self._fold(entry.record)

    def record(self, record: Record) -> None:
        """Write `record` durably, then apply it. Raises LedgerWriteError if the disk refuses
        (including while earlier outcomes are still pending: the ledger's order is the
        order of events, and nothing may overtake a pending outcome)."""
        if not self.write_pending():
            raise LedgerWriteError(
                None, f"outcomes pending, ledger not writable: {self.last_write_error}"
            )
        self._write(record)

    def record_outcome(self, record: Record) -> bool:
        """Write an outcome of something the broker already did. If the disk refuses, the
        outcome is applied in memory and kept pending; returns whether it is durable."""
        try:
            self.record(record)
            return True
        except LedgerWriteError:
            self.pending.append(record)
            self._fold(record)
            return False

    def record_decision(self, record: Record) -> bool:
        """Best effort for a decision that changed nothing at the broker (a rejection)."""
        try:
            self.record(record)
            return True
        except LedgerWriteError:
            return False

    def write_pending(self) -> bool:
        """Try to make every pending outcome durable, in order; whether none is left."""
        while self.pending:
            try:
                self.ledger.append(self.pending[0])
            except LedgerWriteError as e:
                self.last_write_error = str(e)
                return False
            self.pending.pop(0)
        return True

    def _write(self, record: Record) -> None:
        try:
            self.ledger.append(record)
        except LedgerWriteError as e:
            self.last_write_error = str(e)
            raise
        self.last_write_error = None
        self._fold(record)

    def _fold(self, record: Record) -> None:
        self.book.apply(record)
        self.audit.apply(record)
