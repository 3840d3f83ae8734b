"""The audit trail's index: which intents exist and which have a terminal outcome."""

from __future__ import annotations

from solat_chaos.engine.records import TERMINAL, InDoubt, Intent, Record


class AuditTrail:
    """A fold over the ledger answering: is this deal reference still unresolved?"""

    def __init__(self) -> None:
        self.intents: dict[str, Intent] = {}
        self.outcomes: dict[str, Record] = {}
        self.in_doubt: dict[str, InDoubt] = {}
        self.references: set[str] = set()

    def apply(self, record: Record) -> None:
        reference = getattr(record, "deal_reference", None)
        if reference is not None:
            self.references.add(reference)
        match record:
            case Intent():
                self.intents.setdefault(record.deal_reference, record)
            case InDoubt():
                if record.deal_reference not in self.outcomes:
                    self.in_doubt[record.deal_reference] = record
            case _ if isinstance(record, TERMINAL) and record.deal_reference in self.intents:
                self.outcomes.setdefault(record.deal_reference, record)
                self.in_doubt.pop(record.deal_reference, None)

    def unresolved(self) -> list[Intent]:
        """Intents with no terminal outcome, oldest first."""
        return [i for ref, i in self.intents.items() if ref not in self.outcomes]

    def has_outcome(self, deal_reference: str) -> bool:
        return deal_reference in self.outcomes
