"""Which state machines there are: `MACHINES` of `solat_chaos.model.machines`, or a mapping a
caller (a test, a planted-bug script) hands in instead."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis.stateful import RuleBasedStateMachine

Machines = Mapping[str, type[RuleBasedStateMachine]]


class NoMachines(Exception):
    """There are no state machines to run; the message says why."""


def machine_catalogue(machines: Machines | None = None) -> Machines:
    """`machines` when given, else the project's MACHINES (imported only now, so explore and
    replay load before the machines do)."""
    if machines is not None:
        return machines
    try:
        from solat_chaos.model.machines import MACHINES
    except ModuleNotFoundError as exc:
        if exc.name != "solat_chaos.model.machines":
            raise
        raise NoMachines("solat_chaos.model.machines does not exist yet") from None
    return MACHINES
