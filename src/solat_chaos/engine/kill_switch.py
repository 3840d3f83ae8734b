"""The kill switch: an emergency stop for new openings that survives restarts."""

from __future__ import annotations

from solat_chaos.engine.durable_switch import DurableSwitch
from solat_chaos.engine.filesystem import FileSystem

KILL_SWITCH_FILE = "kill_switch.json"


class KillSwitch(DurableSwitch):
    """While active no opening order reaches the broker; closes still may."""

    name = "kill switch"

    def __init__(self, fs: FileSystem, directory: str) -> None:
        super().__init__(fs, directory, KILL_SWITCH_FILE)
