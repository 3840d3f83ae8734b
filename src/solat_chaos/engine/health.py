"""Health, computed at call time from ages: never a cached verdict that can go stale."""

from __future__ import annotations

import math

import attrs


@attrs.frozen
class HealthThresholds:
    broker: float = 30.0  # seconds since the broker last answered
    balance: float = 60.0  # seconds since the balance was fetched
    # Seconds since the trade stream last proved it was alive (an event, a keepalive): past
    # it the stream is silent, and blind.
    stream: float = 30.0


@attrs.frozen
class Health:
    """`status` is "ok" only when nothing is stale and nothing is pending or halted; it is
    "blind" while the trade stream cannot prove every change (`blind` says why). `stream` is
    the stream's connection state, None for an engine without a stream."""

    status: str
    trading_state: str
    reasons: tuple[str, ...]
    ages: dict[str, float | None]
    stale: dict[str, bool]
    outcomes_pending: int
    in_doubt: int
    kill_switch_active: bool
    snapshots_pending: int
    snapshots_dropped: int
    stream: str | None = None
    blind: str | None = None

    def to_json(self) -> dict:
        return attrs.asdict(self)


def stale_ages(ages: dict[str, float | None], thresholds: HealthThresholds) -> dict[str, bool]:
    """An age is stale past its threshold; an age never measured (None) is stale too."""
    return {
        name: age is None or not math.isfinite(age) or age > getattr(thresholds, name)
        for name, age in ages.items()
    }
