"""The audit trail's index: which intents exist and which have a terminal outcome."""

from __future__ import annotations

from solat_chaos.engine.records import TERMINAL, Intent, Record


class AuditTrail:
    """A fold over the ledger answering: is this deal reference still unresolved?"""

    def __init__(self) -> None:
        self.intents: dict[str, Intent] = {}
        self.outcomes: dict[str, Record] = {}
        self.references: set[str] = set()
        # Kept as records arrive: it is read on every order and every reconcile.
        self._unresolved: dict[str, Intent] = {}

    def apply(self, record: Record) -> None:
        reference = getattr(record, "deal_reference", None)
        if reference is None:
            return
        self.references.add(reference)
        if isinstance(record, Intent):
            if reference not in self.intents:
                self.intents[reference] = record
                if reference not in self.outcomes:
                    self._unresolved[reference] = record
        elif isinstance(record, TERMINAL) and reference in self.intents:
            self.outcomes.setdefault(reference, record)
            self._unresolved.pop(reference, None)

    def unresolved(self) -> list[Intent]:
        """Intents with no terminal outcome, oldest first."""
        return list(self._unresolved.values())

    def unresolved_count(self) -> int:
        """How many intents have no terminal outcome (`len(unresolved())`, without the list)."""
        return len(self._unresolved)

    def has_outcome(self, deal_reference: str) -> bool:
        return deal_reference in self.outcomes
