"""Broker views: how the engine's broker port reaches the SimBroker in a machine run.

- "sim" (the default): the SimBroker is the port.
- "rest": the port is `IGRestBroker`, the real IG REST adapter, through respx onto IG's REST
  dialect served in-process around the same SimBroker (`broker.harness.ig_rest_view`). Every
  sim seam still works, through HTTP, so the adapter's request building, error mapping,
  re-login and confirm polling run under the same interleavings the machines explore.

A machine class runs in the view named by its `broker_view` attribute; `in_broker_view(cls,
view)` sets it for the duration of one run. A view other than "sim" keeps its examples in
the same database under a key prefix (`view_database`): a failure found over REST is never
replayed, found passing and dropped by a run in the sim view, nor the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from hypothesis.database import ExampleDatabase

SIM = "sim"
REST = "rest"
BROKER_VIEWS = (SIM, REST)


def check_view(view: str) -> str:
    """`view` if it is a broker view; ValueError naming the views otherwise."""
    if view not in BROKER_VIEWS:
        raise ValueError(f"unknown broker view {view!r}; one of {', '.join(BROKER_VIEWS)}")
    return view


@contextmanager
def in_broker_view(machine_cls: type, view: str) -> Iterator[None]:
    """Run `machine_cls` in `view` until the block ends, then restore the class exactly (it
    is shared with pytest and with later runs in this process)."""
    check_view(view)
    own = "broker_view" in vars(machine_cls)
    before = vars(machine_cls).get("broker_view")
    machine_cls.broker_view = view  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if own:
            machine_cls.broker_view = before  # type: ignore[attr-defined]
        else:
            delattr(machine_cls, "broker_view")


class _Prefixed(ExampleDatabase):
    """`database` with every key under `prefix`."""

    def __init__(self, database: ExampleDatabase, prefix: bytes) -> None:
        super().__init__()
        self._database = database
        self._prefix = prefix

    def save(self, key: bytes, value: bytes) -> None:
        self._database.save(self._prefix + key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self._database.fetch(self._prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self._database.delete(self._prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self._database.move(self._prefix + src, self._prefix + dest, value)


def view_database(database: ExampleDatabase | None, view: str) -> ExampleDatabase | None:
    """The example database a run in `view` uses: `database` itself for "sim" (so existing
    examples keep their keys), else `database` under the view's prefix."""
    if database is None or check_view(view) == SIM:
        return database
    return _Prefixed(database, f"broker-view:{view}:".encode())
