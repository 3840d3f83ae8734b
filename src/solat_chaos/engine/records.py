"""The records the ledger holds: the audit trail of every order and every repair.

Each record is a small frozen value with a `kind` tag. `decode` is strict: a line whose
checksum is right but whose content is not one of these records is treated as corrupt.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

OPEN = "OPEN"
CLOSE = "CLOSE"

_str = attrs.validators.instance_of(str)
_opt_str = attrs.validators.optional(_str)


def _number(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


_opt_number = attrs.validators.optional(_number)


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"causes must be a list of names, got {value!r}")
    return tuple(value)


@attrs.frozen
class Intent:
    """Written, and fsynced, before the broker sees `deal_reference`."""

    deal_reference: str = attrs.field(validator=_str)
    action: str = attrs.field(validator=attrs.validators.in_((OPEN, CLOSE)))
    epic: str = attrs.field(validator=_str)
    direction: str = attrs.field(validator=_str)
    size: float = attrs.field(validator=_number)
    at: float = attrs.field(validator=_number)
    deal_id: str | None = attrs.field(default=None, validator=_opt_str)
    balance_age: float | None = attrs.field(default=None, validator=_opt_number)
    balance_fetched_at: float | None = attrs.field(default=None, validator=_opt_number)


@attrs.frozen
class Confirmed:
    """Terminal outcome: the broker filled `filled_size` (possibly less than asked)."""

    deal_reference: str = attrs.field(validator=_str)
    action: str = attrs.field(validator=attrs.validators.in_((OPEN, CLOSE)))
    deal_id: str = attrs.field(validator=_str)
    epic: str = attrs.field(validator=_str)
    direction: str = attrs.field(validator=_str)
    filled_size: float = attrs.field(validator=_number)
    at: float = attrs.field(validator=_number)
    level: float | None = attrs.field(default=None, validator=_opt_number)
    resolved_by: str = attrs.field(default="broker", validator=_str)


@attrs.frozen
class Refusal:
    """Why the engine refuses an order, as it states it: `causes`, the stable names of the
    conditions that refuse it (each module that refuses defines its names), and `reason`,
    the text for people, built from the same conditions."""

    reason: str
    causes: tuple[str, ...] = ()


@attrs.frozen
class Rejected:
    """Terminal outcome of an order, or the decision record of a rejection before any INTENT.
    `stage` says where it was refused: validation, state, risk, disk, broker, reconcile.
    `causes` names what refused it, as a `Refusal` states it (empty for a broker's refusal,
    and in ledgers written before refusals named their causes)."""

    deal_reference: str = attrs.field(validator=_str)
    stage: str = attrs.field(validator=_str)
    reason: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_number)
    causes: tuple[str, ...] = attrs.field(default=(), converter=_names)


@attrs.frozen
class InDoubt:
    """The broker may or may not have executed; only the reconciler may resolve it."""

    deal_reference: str = attrs.field(validator=_str)
    reason: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_number)


@attrs.frozen
class Adopted:
    """A position the broker holds that the book did not know."""

    record_id: str = attrs.field(validator=_str)
    deal_id: str = attrs.field(validator=_str)
    deal_reference: str = attrs.field(validator=_str)
    epic: str = attrs.field(validator=_str)
    direction: str = attrs.field(validator=_str)
    size: float = attrs.field(validator=_number)
    at: float = attrs.field(validator=_number)


@attrs.frozen
class ClosedExternally:
    """A position the book held that the broker no longer holds."""

    record_id: str = attrs.field(validator=_str)
    deal_id: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_number)


@attrs.frozen
class Resized:
    """A position whose size on the broker differs from the book's."""

    record_id: str = attrs.field(validator=_str)
    deal_id: str = attrs.field(validator=_str)
    size: float = attrs.field(validator=_number)
    at: float = attrs.field(validator=_number)


@attrs.frozen
class Recovery:
    """Written when opening the ledger quarantined lines, so the trail says so itself."""

    quarantined: int = attrs.field(validator=attrs.validators.instance_of(int))
    offsets: tuple[int, ...] = attrs.field(converter=tuple)
    at: float = attrs.field(validator=_number)


Record = Intent | Confirmed | Rejected | InDoubt | Adopted | ClosedExternally | Resized | Recovery

KINDS: dict[str, type] = {
    "INTENT": Intent,
    "CONFIRMED": Confirmed,
    "REJECTED": Rejected,
    "IN_DOUBT": InDoubt,
    "ADOPTED": Adopted,
    "CLOSED_EXTERNALLY": ClosedExternally,
    "RESIZED": Resized,
    "RECOVERY": Recovery,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}

TERMINAL = (Confirmed, Rejected)


def kind_of(record: Record) -> str:
    return _KIND_OF[type(record)]


def encode(record: Record) -> dict[str, Any]:
    # Every field is a plain value or a tuple of them: nothing to recurse into.
    fields = attrs.asdict(record, recurse=False)
    if isinstance(record, Rejected) and not record.causes:
        # Written as before refusals named causes, so that an engine from before them still
        # reads a broker's refusal (an order's outcome) instead of quarantining the line.
        del fields["causes"]
    return {"kind": kind_of(record), **fields}


def decode(data: object) -> Record:
    """Build a record from its JSON form; ValueError names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
    fields = dict(data)
    kind = fields.pop("kind", None)
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown record kind {kind!r}")
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"{kind} record has wrong fields: {e}") from None
