"""Trading states: what kind of order the engine may send right now, and why."""

from __future__ import annotations

import enum

import attrs

from solat_chaos.engine.durable_switch import DurableSwitch
from solat_chaos.engine.filesystem import FileSystem

HALT_FILE = "halt.json"


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce an open position
    HALTED = "HALTED"  # no new orders; reads and reconcile only


class HaltSwitch(DurableSwitch):
    """An operator's halt. Unlike NautilusTrader's, it survives a restart."""

    name = "halt"

    def __init__(self, fs: FileSystem, directory: str) -> None:
        super().__init__(fs, directory, HALT_FILE)


@attrs.frozen
class TradingStatus:
    state: TradingState
    reasons: tuple[str, ...]

    def refuses_opening(self) -> str | None:
        if self.state is TradingState.ACTIVE:
            return None
        return f"engine is {self.state}: {'; '.join(self.reasons)}"

    def refuses_reducing(self) -> str | None:
        if self.state is TradingState.HALTED:
            return f"engine is HALTED: {'; '.join(self.reasons)}"
        return None


def trading_status(
    *,
    halted: str | None,
    outcomes_pending: int,
    ledger_unreadable: str | None,
    kill_switch: str | None,
    reconciled: bool,
    stream_blind: str | None = None,
) -> TradingStatus:
    """The strictest state any condition asks for, with every reason that applies."""
    halting = [
        reason
        for reason in (
            halted and f"halted: {halted}",
            outcomes_pending and f"{outcomes_pending} outcome(s) pending: ledger not writable",
            ledger_unreadable,
        )
        if reason
    ]
    if halting:
        return TradingStatus(TradingState.HALTED, tuple(halting))
    reducing = [
        reason
        for reason in (
            kill_switch and f"kill switch active: {kill_switch}",
            not reconciled and "no successful reconcile since the engine opened",
            stream_blind and f"stream blind: {stream_blind}",
        )
        if reason
    ]
    if reducing:
        return TradingStatus(TradingState.REDUCING, tuple(reducing))
    return TradingStatus(TradingState.ACTIVE, ())
