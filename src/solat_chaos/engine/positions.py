"""The local position book: a fold over the ledger, so a restart rebuilds it exactly."""

from __future__ import annotations

import attrs

from solat_chaos.engine.records import (
    OPEN,
    Adopted,
    ClosedExternally,
    Confirmed,
    Record,
    Resized,
)

# Sizes are decimal quantities; rounding keeps 1.0 - 0.7 - 0.3 from leaving dust behind.
_SIZE_DIGITS = 8


def normal_size(size: float) -> float:
    """A size as the book keeps it; compare sizes only in this form."""
    return round(size, _SIZE_DIGITS)


@attrs.frozen
class Position:
    deal_id: str
    deal_reference: str
    epic: str
    direction: str
    size: float


class PositionBook:
    """Positions by deal id. Applying the same evidence twice changes nothing: a fill is
    keyed by its deal reference and its deal id, a repair by its record id."""

    def __init__(self) -> None:
        self._positions: dict[str, Position] = {}
        self._applied_references: set[str] = set()
        self._filled_deal_ids: set[str] = set()
        self._applied_record_ids: set[str] = set()
        self._last_change: dict[str, int] = {}
        self.version = 0

    def apply(self, record: Record) -> None:
        match record:
            case Confirmed():
                self._apply_fill(record)
            case Adopted() | ClosedExternally() | Resized():
                if record.record_id not in self._applied_record_ids:
                    self._applied_record_ids.add(record.record_id)
                    self._apply_repair(record)

    def _apply_fill(self, fill: Confirmed) -> None:
        if not self._first_sight(fill):
            return
        existing = self._positions.get(fill.deal_id)
        if fill.action == OPEN:
            opened = existing or Position(
                fill.deal_id, fill.deal_reference, fill.epic, fill.direction, 0.0
            )
            self._set(opened, opened.size + fill.filled_size)
        elif existing is not None:
            self._set(existing, existing.size - fill.filled_size)

    def _first_sight(self, fill: Confirmed) -> bool:
        """Whether this fill has not been applied before. A deal reference is filled once,
        and a deal id is opened once: a duplicate confirmation that names a deal id already
        opened (under another reference) must not open it again."""
        if fill.deal_reference in self._applied_references:
            return False
        self._applied_references.add(fill.deal_reference)
        if fill.action != OPEN:
            return True
        if fill.deal_id in self._filled_deal_ids or fill.filled_size <= 0:
            return False
        self._filled_deal_ids.add(fill.deal_id)
        return True

    def _apply_repair(self, repair: Adopted | ClosedExternally | Resized) -> None:
        match repair:
            case Adopted():
                self._filled_deal_ids.add(repair.deal_id)
                if repair.deal_id not in self._positions:
                    self._set(
                        Position(
                            repair.deal_id,
                            repair.deal_reference,
                            repair.epic,
                            repair.direction,
                            0.0,
                        ),
                        repair.size,
                    )
            case ClosedExternally():
                if (position := self._positions.get(repair.deal_id)) is not None:
                    self._set(position, 0.0)
            case Resized():
                if (position := self._positions.get(repair.deal_id)) is not None:
                    self._set(position, repair.size)

    def _set(self, position: Position, size: float) -> None:
        size = normal_size(size)
        self.version += 1
        self._last_change[position.deal_id] = self.version
        if size > 0:
            self._positions[position.deal_id] = attrs.evolve(position, size=size)
        else:
            self._positions.pop(position.deal_id, None)

    def get(self, deal_id: str) -> Position | None:
        return self._positions.get(deal_id)

    def positions(self) -> dict[str, Position]:
        return dict(self._positions)

    def has_filled(self, deal_id: str) -> bool:
        """Whether any fill or adoption ever brought this deal id into the book."""
        return deal_id in self._filled_deal_ids

    def changed_since(self, version: int) -> set[str]:
        """Deal ids changed after the book was at `version`."""
        return {deal_id for deal_id, v in self._last_change.items() if v > version}

    def __len__(self) -> int:
        return len(self._positions)
