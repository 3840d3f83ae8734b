"""Trading states: what kind of order the engine may send right now, and why."""

from __future__ import annotations

import enum

import attrs

from solat_chaos.engine.durable_switch import DurableSwitch
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.records import Refusal

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
class Cause:
    """A condition that keeps the engine from trading freely, and the state it asks for.
    `name` is its stable form: a refusal records it (`Rejected.causes`) and a checker matches
    it; the text beside it is for people."""

    name: str
    state: TradingState


HALT = Cause("halt", TradingState.HALTED)
OUTCOMES_PENDING = Cause("outcomes_pending", TradingState.HALTED)
LEDGER_UNREADABLE = Cause("ledger_unreadable", TradingState.HALTED)
KILL_SWITCH = Cause("kill_switch", TradingState.REDUCING)
NOT_RECONCILED = Cause("not_reconciled", TradingState.REDUCING)
STREAM_BLIND = Cause("stream_blind", TradingState.REDUCING)


@attrs.frozen
class Reason:
    """A cause that applies now, with its text."""

    cause: Cause
    text: str


def refusal_heading(state: TradingState) -> str:
    """How a refusal for the trading state begins: the state the engine is in."""
    return f"engine is {state}: "


@attrs.frozen
class TradingStatus:
    state: TradingState
    why: tuple[Reason, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(reason.text for reason in self.why)

    def refuses_opening(self) -> Refusal | None:
        if self.state is TradingState.ACTIVE:
            return None
        return self._refusal()

    def refuses_reducing(self) -> Refusal | None:
        if self.state is TradingState.HALTED:
            return self._refusal()
        return None

    def _refusal(self) -> Refusal:
        return Refusal(
            refusal_heading(self.state) + "; ".join(self.reasons),
            tuple(reason.cause.name for reason in self.why),
        )


def trading_status(
    *,
    halted: str | None,
    outcomes_pending: int,
    ledger_unreadable: str | None,
    kill_switch: str | None,
    reconciled: bool,
    stream_blind: str | None = None,
) -> TradingStatus:
    """The strictest state any condition asks for, with every reason that asks for it."""
    if reconciled and not (
        halted or outcomes_pending or ledger_unreadable or kill_switch or stream_blind
    ):
        # No condition applies (an engine trading freely): the one status that says so. The
        # engine, its health and the model ask for the status many times a step.
        return _FREE
    applying = [
        halted and Reason(HALT, f"halted: {halted}"),
        outcomes_pending
        and Reason(OUTCOMES_PENDING, f"{outcomes_pending} outcome(s) pending: ledger not writable"),
        ledger_unreadable and Reason(LEDGER_UNREADABLE, ledger_unreadable),
        kill_switch and Reason(KILL_SWITCH, f"kill switch active: {kill_switch}"),
        not reconciled
        and Reason(NOT_RECONCILED, "no successful reconcile since the engine opened"),
        stream_blind and Reason(STREAM_BLIND, f"stream blind: {stream_blind}"),
    ]
    for state in _STRICTEST_FIRST:
        if why := tuple(reason for reason in applying if reason and reason.cause.state is state):
            return TradingStatus(state, why)
    return _FREE


_STRICTEST_FIRST = (TradingState.HALTED, TradingState.REDUCING)
_FREE = TradingStatus(TradingState.ACTIVE, ())
