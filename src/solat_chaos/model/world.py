"""One simulated deployment: a disk, a clock, a broker, an event loop, and the engine
running on them — restartable like a crashed process.

The engine reaches the disk and the broker through per-process handles. A crash revokes the
handles of the dead process before its tasks are cancelled, so nothing a dying task does can
touch the disk or the broker: the next engine sees exactly what was durable.
"""

from __future__ import annotations

import asyncio
import errno
import json
import selectors
from collections.abc import Coroutine
from typing import Any

import attrs

from solat_chaos.broker.sim import ORDER_METHODS, SimBroker
from solat_chaos.broker.sim_stream import SimTradeStream
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.broker import (
    Account,
    Broker,
    BrokerActivity,
    BrokerPosition,
    BrokerUnavailable,
    CloseOrder,
    DealConfirm,
    OpenOrder,
)
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine, EngineConfig
from solat_chaos.engine.health import HealthThresholds
from solat_chaos.engine.kill_switch import KILL_SWITCH_FILE
from solat_chaos.engine.ledger import LEDGER_FILE, QUARANTINE_FILE, Entry, Ledger
from solat_chaos.engine.positions import normal_size
from solat_chaos.engine.records import TERMINAL, Confirmed, Intent
from solat_chaos.engine.risk import RiskLimits
from solat_chaos.engine.snapshots import SNAPSHOT_FILE
from solat_chaos.engine.stream import StreamState
from solat_chaos.model.invariants import fold_fills, verified_entry
from solat_chaos.model.reference import Reference
from solat_chaos.model.views import REST, SIM, check_view

DATA_DIR = "/srv/solat"
LEDGER_PATH = f"{DATA_DIR}/{LEDGER_FILE}"
QUARANTINE_PATH = f"{DATA_DIR}/{QUARANTINE_FILE}"
KILL_SWITCH_PATH = f"{DATA_DIR}/{KILL_SWITCH_FILE}"
SNAPSHOT_PATH = f"{DATA_DIR}/{SNAPSHOT_FILE}"

# Small limits so that a few steps can reach every limit, every eviction and every bound.
MODEL_CONFIG = EngineConfig(
    balance_ttl=60.0,
    limits=RiskLimits(
        max_order_size=5.0,
        # Four, not three: at three, once a few orders had filled, most later ones were
        # refused for it, and what needs one more fill (a duplicate confirm of a deal a
        # previous process filled, a partial close) was rare (docs/benchmarks.md, "Eighth
        # round").
        max_open_positions=4,
        # Two of the largest order (3.0) reach it, so a third order breaks it before the
        # open-positions limit does; at 8.0 only three orders of 3.0 in a row did, one
        # example in hundreds (docs/benchmarks.md, "Seventh round").
        max_exposure=6.0,
        max_orders_per_hour=6,
        margin_per_unit=100.0,
    ),
    health=HealthThresholds(broker=30.0, balance=60.0),
    read_attempts=3,
    snapshot_max_pending=2,
    snapshot_flush_every=1,
)

# A restart takes time; the engine's deal references rely on its clock moving on.
RESTART_SECONDS = 1.0

# Yields of the event loop after which tasks that are still running are waiting on a held
# broker request. Each broker call takes a few yields; a read retries at most 3 times.
SETTLE_YIELDS = 200


class _NoPollSelector(selectors.DefaultSelector):
    """A selector that does not poll when asked not to wait. The world's loop reads no
    socket (every request is answered in process, the IG REST view's too), so a poll between
    two callbacks finds nothing; the loop asked the kernel before each batch of callbacks it
    ran, 1-2 % of a step's profile. A wait (any other timeout) still polls; timers need no
    poll."""

    def select(self, timeout=None):
        if timeout == 0:
            return []
        return super().select(timeout)


class _CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the callbacks scheduled on it (every task step, every
    future's wake-up goes through `call_soon`), so `World.settle` can see the loop go idle:
    nothing in the model uses timers, so when only its own yield was scheduled since its
    last one, no task can run until a rule answers a held request."""

    scheduled = 0

    def __init__(self) -> None:
        super().__init__(_NoPollSelector())

    def call_soon(self, callback, *args, context=None):  # type: ignore[override]
        self.scheduled += 1
        return super().call_soon(callback, *args, context=context)


class ProcessFileSystem:
    """The engine's view of the disk for one process lifetime. After `revoke` (the process
    died) every call fails, so a cancelled task cannot write behind the next process's back.
    While the world is `unmounted` the data directory is gone — the seed's
    directory_disappears() — and comes back, with what it held, when the disk recovers."""

    def __init__(self, disk: SimFileSystem, world: World) -> None:
        self._disk = disk
        self._world = world
        self.alive = True

    def revoke(self) -> None:
        self.alive = False

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._disk, name)

        def guarded(path: str, *args: Any) -> Any:
            if not self.alive:
                raise OSError(errno.EIO, "process crashed", path)
            if self._world.unmounted and path.startswith(DATA_DIR):
                if name == "exists":
                    return False
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            return operation(path, *args)

        # Made once per operation: it reads the process's and the disk's state when called.
        setattr(self, name, guarded)
        return guarded


class ProcessBroker:
    """The engine's broker port for one process lifetime, and the model's eyes on it: it
    tells the reference model the instant an order reaches the broker and what came back.
    `port` is how the calls reach `sim`: the sim itself, or the IG REST adapter over HTTP
    (the world's broker view); the model's eyes read `sim`, the ground truth, either way."""

    def __init__(self, sim: SimBroker, world: World, port: Broker) -> None:
        self._sim = sim
        self._world = world
        self._port = port
        self.alive = True

    def revoke(self) -> None:
        self.alive = False

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (the sim port has nothing to close)."""
        close = getattr(self._port, "aclose", None)
        if close is not None:
            await close()

    def _check_alive(self) -> None:
        if not self.alive:
            raise BrokerUnavailable("process crashed")

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        self._check_alive()
        self._world.order_arrives(order)
        return self._answered(await self._port.open_position(order))

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        self._check_alive()
        self._world.order_arrives(order)
        return self._answered(await self._port.close_position(order))

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        self._check_alive()
        return self._answered(await self._port.confirm(deal_reference))

    async def positions(self) -> list[BrokerPosition]:
        self._check_alive()
        answer = await self._port.positions()
        if _sizes(answer) != self._world.broker_positions():
            self._world.reference.stale_positions_served += 1
            self._world.reference.book_may_lag_because("the broker served a stale positions list")
        return self._answered(answer)

    async def account(self) -> Account:
        self._check_alive()
        # A fetch reflects every fill the book held when it was asked for.
        book_version = self._world.engine.journal.book.version
        account = await self._port.account()
        self._world.reference.balance_fetched(book_version, self._world.clock.monotonic())
        return self._answered(account)

    async def activity(self, since: float) -> list[BrokerActivity]:
        self._check_alive()
        return self._answered(await self._port.activity(since))

    def _answered(self, answer: Any) -> Any:
        reference = self._world.reference
        reference.broker_answered(self._world.clock.monotonic())
        # Only an answer naming a deal can name the wrong one: a REJECTED answer for a deal
        # the broker executed is the port's lie, for OUTCOME_TRUTHFUL to judge.
        if isinstance(answer, DealConfirm) and answer.deal_id is not None:
            truth = self._sim.lookup_confirm(answer.deal_reference)
            if truth is not None and truth.deal_id != answer.deal_id:
                reference.deal_misattributed(
                    answer.deal_reference,
                    f"{answer.deal_reference} was confirmed with deal id {answer.deal_id}, "
                    f"truly {truth.deal_id}",
                )
        return answer


@attrs.define
class TaskRecord:
    """An operation started on the engine, as the model saw it."""

    kind: str
    task: asyncio.Task


@attrs.frozen
class DurableIndex:
    """The durable ledger records by deal reference: CONFIRMED ones, INTENTs, and every
    terminal outcome (a set: two different ones are an AUDIT_COMPLETE violation)."""

    confirmed: frozenset[str]
    intents: frozenset[str]
    outcomes: dict[str, set]

    @classmethod
    def of(cls, entries: list[Entry]) -> DurableIndex:
        outcomes: dict[str, set] = {}
        for entry in entries:
            if isinstance(entry.record, TERMINAL):
                outcomes.setdefault(entry.record.deal_reference, set()).add(entry.record)
        return cls(
            confirmed=frozenset(
                e.record.deal_reference for e in entries if isinstance(e.record, Confirmed)
            ),
            intents=frozenset(
                e.record.deal_reference for e in entries if isinstance(e.record, Intent)
            ),
            outcomes=outcomes,
        )

    def extended(self, entries: list[Entry]) -> DurableIndex:
        """The index of this one's records followed by `entries` (this one is unchanged)."""
        if not entries:
            return self
        more = DurableIndex.of(entries)
        outcomes = dict(self.outcomes)
        for reference, records in more.outcomes.items():
            outcomes[reference] = outcomes.get(reference, set()) | records
        return DurableIndex(
            confirmed=self.confirmed | more.confirmed,
            intents=self.intents | more.intents,
            outcomes=outcomes,
        )


class World:
    """`with_stream`: the engine consumes the SimBroker's trade stream (`stream`), which the
    world pumps whenever it settles and which keeps alive while time passes (`advance`).
    `broker_view` (`model.views`): "sim", the engine's broker port is the SimBroker; "rest",
    it is the IG REST adapter over HTTP onto IG's dialect around the same SimBroker, a fresh
    adapter (logged out) for each process and one IG app (its sessions) for the world."""

    def __init__(
        self,
        config: EngineConfig = MODEL_CONFIG,
        *,
        with_stream: bool = False,
        broker_view: str = SIM,
    ) -> None:
        self.config = config
        self.disk = SimFileSystem()
        self.disk.makedirs(DATA_DIR)
        self.clock = SimClock()
        self.sim = SimBroker(clock=self.clock)
        self.broker_view = check_view(broker_view)
        self.ig_app = _ig_app(self.sim) if broker_view == REST else None
        self.stream = SimTradeStream(self.sim, self.clock) if with_stream else None
        self.reference = Reference(config)
        self.loop = _CountingLoop()
        self.tasks: list[TaskRecord] = []
        # How many of `tasks`, from the first, are done, and the errors they raised: a task
        # never runs again once done, so the settle loop, the invariants' "nothing in
        # flight" and ENGINE_RAISED read only the tasks after them (`_finished`).
        self._done: tuple[int, list[BaseException]] = (0, [])
        self.restarts = 0
        self.disk_faults: set[str] = set()
        self.unmounted = False
        self.quarantine_path = QUARANTINE_PATH
        self._durable_cache: tuple[bytes, list[Entry]] = (b"", [])
        # The durable bytes last indexed, their index, and the entries it was built from.
        self._index: tuple[bytes | None, DurableIndex, list[Entry]] = (
            None,
            DurableIndex.of([]),
            [],
        )
        # The engine's ledger, how many of its entries `ledger_fills` has folded, and the fold.
        self._fills: tuple[Ledger | None, int, dict[str, float]] = (None, 0, {})
        self._snapshot_file: tuple[bytes | None, bool] = (None, True)  # its bytes, their verdict
        self._sources: list[Any] | None = None  # the parts that arm faults (_fault_sources)
        self.fs: ProcessFileSystem
        self.port: ProcessBroker
        self.engine = self._open_engine()

    # -- processes ---------------------------------------------------------------------

    def _open_engine(self) -> Engine:
        self.fs = ProcessFileSystem(self.disk, self)
        self.port = ProcessBroker(self.sim, self, self._broker_port())
        engine = Engine.open(
            DATA_DIR,
            self.port,
            fs=self.fs,
            clock=self.clock,
            config=self.config,
            stream=self.stream,
        )
        self.reference.process_started(engine, disk_sound=self.disk_sound())
        return engine

    def _broker_port(self) -> Broker:
        if self.ig_app is None:
            return self.sim
        from solat_chaos.broker.harness import ig_rest_view

        # The adapter's only wait (between confirm polls) is on the world's clock, and zero.
        return ig_rest_view(self.sim, app=self.ig_app, sleep=self.clock.sleep)

    def crash_and_restart(self, torn_bytes: int) -> bytes:
        """Drop the engine like a killed process: its in-flight tasks die with it, the disk
        loses what was not fsynced (maybe keeping a torn prefix), and a new engine opens.
        Returns the ledger's bytes as the new engine found them."""
        self.fs.revoke()
        self.port.revoke()
        if self.stream is not None:
            self.stream.stop()
        orphans = [t for t in self.tasks if not t.task.done()]
        for record in orphans:
            record.task.cancel()
        self.settle()
        self.loop.run_until_complete(self.port.aclose())
        self.tasks.clear()
        self._done = (0, [])
        self.reference.process_died(
            orphaned=bool(orphans or self.sim.pending or self.engine.journal.pending)
        )
        self.disk.crash(torn_bytes=torn_bytes)
        ledger = self.disk.durable_bytes(LEDGER_PATH) or b""
        self.restarts += 1
        self.advance(RESTART_SECONDS)
        self.engine = self._open_engine()
        return ledger

    # -- running operations --------------------------------------------------------------

    def start(self, kind: str, operation: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = self.loop.create_task(operation)
        self.tasks.append(TaskRecord(kind, task))
        self.settle()
        return task

    def settle(self) -> None:
        """Run the loop until every task is done or waits on a held broker request."""
        loop = self.loop
        yields, seen = SETTLE_YIELDS, None

        def yielded() -> None:
            # One yield to the loop: a callback that schedules itself again, where a task
            # awaiting `asyncio.sleep(0)` would (the same place in the loop's queue, at a
            # fraction of a task's cost), and stops the loop as that task's end would have
            # stopped `run_until_complete`. Stops as soon as further yields could change
            # nothing (the loop is idle): most settles with a held request would otherwise
            # spin all SETTLE_YIELDS.
            nonlocal yields, seen
            if not yields or self._finished() == len(self.tasks) or loop.scheduled == seen:
                loop.call_soon(loop.stop)
                return
            yields -= 1
            seen = loop.scheduled + 1  # this yield's own wake-up
            loop.call_soon(yielded)

        loop.call_soon(yielded)
        loop.run_forever()
        if self.stream is not None:
            self.stream.pump()

    def advance(self, seconds: float) -> None:
        """Let time pass; a healthy trade stream keeps alive meanwhile."""
        if self.stream is None:
            self.clock.advance(seconds)
        else:
            self.stream.advance(seconds)

    def running(self) -> list[TaskRecord]:
        return [t for t in self.tasks[self._finished() :] if not t.task.done()]

    def engine_errors(self) -> list[BaseException]:
        finished = self._finished()
        return self._done[1] + _errors(self.tasks[finished:])

    def _finished(self) -> int:
        """How many of `tasks`, from the first, are done (their errors kept in `_done`)."""
        tasks = self.tasks
        finished, errors = self._done
        start = finished
        while finished < len(tasks) and tasks[finished].task.done():
            finished += 1
        if finished != start:
            self._done = (finished, errors + _errors(tasks[start:finished]))
        return finished

    def close(self) -> None:
        for record in self.running():
            record.task.cancel()
        self.settle()
        self.loop.run_until_complete(self.port.aclose())
        self.loop.close()

    # -- the broker ----------------------------------------------------------------------

    def release(self, index: int) -> None:
        if self._too_late(index):
            self.sim.time_out(index, executed=False)
        else:
            self.sim.release(index)
        self.settle()

    def release_all(self) -> None:
        while self.sim.pending:
            self.release(0)

    def time_out(self, index: int, *, executed: bool) -> None:
        self.sim.time_out(index, executed=executed and not self._too_late(index))
        self.settle()

    def _too_late(self, index: int) -> bool:
        """The model's one assumption about the network: an order request reaches the broker
        within the engine's in-doubt grace period or never (it dies with its connection)."""
        held = self.sim.pending[index]
        return held.kind in ORDER_METHODS and self.past_grace(self.sim.requests[held.seq - 1].at)

    def past_grace(self, sent_at: float | None) -> bool:
        """Whether a request sent at `sent_at` can no longer reach the broker."""
        return self.clock.now() - (sent_at or 0.0) >= self.config.in_doubt_grace

    def expire_broker_sessions(self) -> None:
        """IG invalidates every session token (the rest view; the sim port has none): the
        adapter's next call is refused with a 401 and must log in again."""
        if self.ig_app is not None:
            self.ig_app.state.ig.expire_sessions()

    def close_externally(self, deal_id: str, fraction: float) -> None:
        position = next((p for p in self.sim.snapshot_positions() if p.deal_id == deal_id), None)
        if position is None:
            return
        size = None if fraction >= 1.0 else round(position.size * fraction, 2)
        self.sim.close_externally(deal_id, size or None)
        self.reference.book_may_lag_because(f"{deal_id} closed on the dashboard ({size or 'all'})")

    def open_externally(self, epic: str, size: float) -> None:
        try:
            confirm = self.sim.open_externally(epic, "BUY", size)
        except ValueError:
            return  # the broker refused it (funds): nothing happened
        self.reference.book_may_lag_because(f"{confirm.deal_id} opened on the dashboard")

    # -- the disk ----------------------------------------------------------------------

    def disk_sound(self) -> bool:
        return not self.disk_faults

    def disk_fault(self, name: str, arm) -> None:
        arm(self.disk)
        self.disk_faults.add(name)
        self.reference.disk_fault_armed()

    def unmount(self) -> None:
        self.unmounted = True
        self.disk_faults.add("unmounted")
        self.reference.disk_fault_armed()

    def heal_disk(self) -> None:
        self.disk.heal()
        self.unmounted = False
        self.disk_faults.clear()

    def rot_ledger_line(self, line: int, byte: bytes) -> None:
        """Flip bytes in the middle of one durable ledger line (bit rot)."""
        data = self.disk.durable_bytes(LEDGER_PATH) or b""
        lines = [(o, raw) for o, raw in _lines_with_offsets(data) if raw.strip()]
        if not lines:
            return
        offset, raw = lines[line % len(lines)]
        entry = verified_entry(raw)
        reference = None if entry is None else getattr(entry.record, "deal_reference", None)
        self.reference.ledger_rotted(reference)
        self.disk.corrupt(LEDGER_PATH, offset + len(raw) // 2, byte)

    def rot_kill_switch_file(self, offset: int) -> None:
        data = self.disk.durable_bytes(KILL_SWITCH_PATH) or b""
        if not data:
            return
        position = offset % len(data)
        if data[position : position + 1] != b"#":
            self.disk.corrupt(KILL_SWITCH_PATH, position, b"#")
            self.reference.kill_switch_file_garbled = True

    def heal(self) -> None:
        """Lift every fault, answer every held request, and let the in-doubt grace pass:
        the start of the heal phase."""
        self.heal_disk()
        self.release_all()
        self.sim.heal()
        if self.stream is not None:
            self.stream.heal()
        self.advance(self.config.in_doubt_grace)
        self.settle()
        self.engine.retry_pending()

    # -- faults, for coverage ------------------------------------------------------------

    UNMOUNTED = "disk:unmounted"

    def _fault_sources(self) -> list[Any]:
        # Every part of the world that arms faults says so (`armed_faults`), so a port or
        # seam added later is covered without listing it here.
        # (Asked of the type: the per-process disk view forwards any attribute.)
        # Found once: the parts that arm faults (disk, sim, stream) are made with the world
        # and never replaced, and coverage asks before every step.
        if self._sources is None:
            self._sources = [
                part for part in vars(self).values() if hasattr(type(part), "armed_faults")
            ]
        return self._sources

    def fault_kinds(self) -> tuple[str, ...]:
        """Every fault this world can arm."""
        kinds = [self.UNMOUNTED]
        for source in self._fault_sources():
            kinds.extend(source.FAULT_KINDS)
        return tuple(sorted(kinds))

    def armed_faults(self) -> set[str]:
        """The faults armed right now (names from `fault_kinds`)."""
        armed = {self.UNMOUNTED} if self.unmounted else set()
        for source in self._fault_sources():
            armed |= source.armed_faults()
        return armed

    # -- the model's eyes ----------------------------------------------------------------

    def order_arrives(self, order: OpenOrder | CloseOrder) -> None:
        self.reference.order_arrived(order, self)

    def durable_entries(self) -> list[Entry]:
        """The ledger records a crash right now would leave, as recovery would read them."""
        return list(self._durable()[1])

    def durable_index(self) -> DurableIndex:
        """What those records say, by deal reference (the same for the same records: the
        invariants read it after every step, and the ledger changes on few of them)."""
        data, entries = self._durable()
        indexed, index, folded = self._index
        if indexed is not data:
            # Extended when the records grew by appends, as they mostly do.
            if entries[: len(folded)] == folded:
                index = index.extended(entries[len(folded) :])
            else:
                index = DurableIndex.of(entries)
            self._index = (data, index, entries)
        return index

    def ledger_fills(self, ledger: Ledger) -> dict[str, float]:
        """The largest fill, adoption or resize `ledger` records for each deal id (not to be
        changed: a copy is the caller's). Folded as the ledger grows: a ledger only appends
        to its entries, and EXACTLY_ONCE_FILLS reads it after every step."""
        cached, folded, largest = self._fills
        if cached is not ledger:
            folded, largest = 0, {}
        if folded != len(ledger.entries):
            fold_fills(largest, [entry.record for entry in ledger.entries[folded:]])
            self._fills = (ledger, len(ledger.entries), largest)
        return largest

    def _durable(self) -> tuple[bytes, list[Entry]]:
        data = self.disk.durable_bytes(LEDGER_PATH) or b""
        known, entries = self._durable_cache
        if data != known:
            # The ledger mostly grows by appends of whole lines: then only the new lines are
            # read (the lines of `known`, its last one empty, are those of `data` before them).
            if known.endswith(b"\n") and data.startswith(known):
                entries = entries + self._entries_in(data[len(known) :])
            else:
                entries = self._entries_in(data)
            self._durable_cache = (data, entries)
        return self._durable_cache

    def _entries_in(self, data: bytes) -> list[Entry]:
        """The ledger records of the lines of `data` that verify."""
        entries = []
        for line in data.split(b"\n"):
            entry = verified_entry(line)
            if entry is not None:
                entries.append(entry)
        return entries

    def stream_age(self) -> float | None:
        """Seconds since the stream last spoke to the engine; None if it never did."""
        if self.stream is None or self.stream.last_spoke is None:
            return None
        return self.clock.monotonic() - self.stream.last_spoke

    def stream_silent(self) -> bool:
        """Connected, yet silent past the keepalive threshold: a gap, as the engine must see."""
        age = self.stream_age()
        return (
            self.stream is not None
            and self.stream.state is StreamState.CONNECTED
            and age is not None
            and age > self.config.health.stream
        )

    def stream_live(self) -> bool:
        """Connected and not yet silent past the threshold: all the engine can know, and
        enough for a reconcile started now to end blindness (a silence that began just
        before it is caught at the threshold, and what it hid the reconcile reads)."""
        return (
            self.stream is not None
            and self.stream.state is StreamState.CONNECTED
            and not self.stream_silent()
        )

    def broker_positions(self) -> dict[str, float]:
        return {deal_id: normal_size(size) for deal_id, size in self.sim.position_sizes().items()}

    def local_positions(self) -> dict[str, float]:
        return {deal_id: p.size for deal_id, p in self.engine.positions().items()}

    def snapshot_file_ok(self) -> bool:
        data = self.disk.durable_bytes(SNAPSHOT_PATH)
        if data is None:
            return True
        # Parsed once per content: SNAPSHOT_BOUNDED asks after every step, the file changes
        # on few of them.
        if data != self._snapshot_file[0]:
            try:
                ok = isinstance(json.loads(data)["snapshots"], list)
            except (ValueError, KeyError, TypeError):
                ok = False
            self._snapshot_file = (data, ok)
        return self._snapshot_file[1]


def _ig_app(sim: SimBroker) -> Any:
    # Imported only for the rest view: the web stack is no part of a sim-view run.
    from solat_chaos.broker.ig_http import create_app

    return create_app(sim)


def _lines_with_offsets(data: bytes) -> list[tuple[int, bytes]]:
    lines, offset = [], 0
    for raw in data.split(b"\n"):
        lines.append((offset, raw))
        offset += len(raw) + 1
    return lines


def _errors(tasks: list[TaskRecord]) -> list[BaseException]:
    """What the tasks among `tasks` that are done raised, in order."""
    return [
        t.task.exception()
        for t in tasks
        if t.task.done() and not t.task.cancelled() and t.task.exception() is not None
    ]


def _sizes(positions: list[BrokerPosition]) -> dict[str, float]:
    return {p.deal_id: normal_size(p.size) for p in positions}
