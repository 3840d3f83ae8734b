"""`InjectedFault`: the handle every chaos library returns for a fault it armed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable


class InjectedFault(contextlib.AbstractContextManager):
    """A fault already armed when this is made, so a plain call injects it. `lift()`, or
    leaving a `with` block, lifts it; lifting twice is harmless."""

    def __init__(self, description: str, lift: Callable[[], None]) -> None:
        self.description = description
        self._lift = lift
        self.lifted = False

    def lift(self) -> None:
        if not self.lifted:
            self.lifted = True
            self._lift()

    def __exit__(self, *exc: object) -> None:
        self.lift()

    def __repr__(self) -> str:
        state = "lifted" if self.lifted else "armed"
        return f"<InjectedFault {self.description} ({state})>"
