"""The process machine: Hypothesis drives a running engine PROCESS, Jepsen-style.

Each example deploys an engine process (through its `EngineAdapter`), the simulated IG
broker, a TCP fault proxy between them and a data directory on a small tmpfs
(`model.process_world`). The rules trade through the engine's API, act at the broker (the
dashboard, its own fault seams), break the TCP connection (reset, half-open, trickle, a body
cut mid-answer), kill the process with SIGKILL and start it again on the same data
directory, pause it with SIGSTOP, and fill its disk for real. The invariants are judged from
outside (`model.process_checks`): the broker's truth, the API's answers, the files on disk.
Every example ends with a heal phase and LIVENESS, as the in-process machines do.

Time is the engine's clock, held by the harness (`advance_clock`, `advance_to_next_timer`),
and the harness steps in lockstep with the engine's trade stream (it looks at the engine only
once the engine has handled everything the broker's stream sent), so an example replays from
its artifact; docs/model.md lists what still varies between runs.

What Hypothesis draws never depends on what the process answered: a replayed example must
make the same draws, though the process's timing differs from run to run. So no Bundle is
filled from the broker's or the engine's answers (a rule acting on a deal draws an index into
the deals known when it runs, a no-op while none is), and no precondition reads the process
(a rule that needs a live engine is a no-op, noted, when it has died on its own).

`process_machines(adapter_cls)` builds the machine classes for an engine; `PROCESS_MACHINES`
are the ones for `solat-chaos serve`: `process` (every rule), `process-broker` (orders, the
broker's faults, the network) and `process-recovery` (the kill switch, kills, pauses and a
full disk).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from solat_chaos.broker.sim import CLOSE_POSITION, OPEN_POSITION
from solat_chaos.chaos.engine_process import EngineDidNotStart
from solat_chaos.chaos.tcp_proxy import ProxyFault
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.model import process_checks as checks
from solat_chaos.model.engine_adapter import (
    EngineAdapter,
    EngineUnreachable,
    NotSupported,
    SolatEngineAdapter,
)
from solat_chaos.model.invariants import LIVENESS, InvariantViolation
from solat_chaos.model.machines import (
    EPICS,
    ERRORS_AFTER,
    ERRORS_BEFORE,
    FRACTIONS,
    PORT_METHODS,
    SIZES,
    _count,
)
from solat_chaos.model.process_world import ProcessWorld, disk_fault_support
from solat_chaos.model.stats import STATS

# Which broker calls a TCP fault strikes: (HTTP method, path suffix) on IG's REST API.
TCP_TARGETS = {"orders": ("POST", "/positions/otc"), "reads": ("GET", None)}
# A request sent to a paused engine is on its way before it is resumed or killed.
PAUSE_SECONDS = 0.05
# Enough timers for any in-doubt grace to run out (each moves to the engine's next timer).
HEAL_RECONCILES = 8
# How long, in real time, the heal phase gives a restarted engine's stream to reconnect.
HEAL_STREAM_SECONDS = 5.0
HEAL_PAUSE_SECONDS = 0.2
# A rule acting on a deal draws an index into the deals known when it runs (modulo their
# count): drawn without looking at them, so the draw is the same on a replay.
DEAL_INDICES = st.integers(0, 15)


class ProcessChaosMachine(RuleBasedStateMachine):
    """The plumbing every process machine shares: the deployment, the engine's start, the
    checks from outside, and the heal phase."""

    adapter_cls: type[EngineAdapter] = SolatEngineAdapter

    def __init__(self) -> None:
        super().__init__()
        STATS.examples += 1
        self.outside = checks.Outside()
        # Why the disk rule is off here (None: a tmpfs can be mounted).
        self.disk_off = disk_fault_support()
        self.world = ProcessWorld(
            self.adapter_cls(), self._order_arrives, real_disk=self.disk_off is None
        )
        self.adapter = self.world.adapter
        # Every deal seen at the broker or in the engine's book, in the order first seen.
        self._deals: list[str] = []

    @classmethod
    def not_checked(cls) -> dict[str, str]:
        """{invariant or rule: why it is not checked} for this engine on this machine."""
        missing = checks.not_checked(cls.adapter_cls())
        disk_off = disk_fault_support()
        if disk_off is not None:
            missing["rule disk_fills_up (a real ENOSPC) is off"] = disk_off
        if cls.adapter_cls.trade_stream_position is EngineAdapter.trade_stream_position:
            missing["replay: lockstep with the trade stream"] = (
                "the adapter does not say how far the engine read its trade stream: a replay "
                "may see the stream's updates at other steps"
            )
        return missing

    def _order_arrives(self, order) -> None:
        STATS.checked(checks.check_order_arrival)
        checks.check_order_arrival(order, self.world, self.outside)

    # -- the engine's life -----------------------------------------------------------------

    @initialize()
    def start_engine(self) -> None:
        """The engine starts on an empty data directory and reconciles before trading."""
        _count("start_engine")
        self._start(self.world.start)
        self._learn_deals()

    def _start(self, start) -> None:
        """Start a process (`world.start` or `world.restart`), then judge what it shows as
        it starts: its kill switch, then the startup reconcile its own timer would run."""
        try:
            start()
        except EngineDidNotStart as exc:
            raise InvariantViolation(LIVENESS, f"the engine did not come up: {exc}") from exc
        self._catch_up_with_the_stream()
        active = self.adapter.kill_switch_status().active
        self.outside.kill_switch_reported = active
        STATS.checked(checks.check_fail_closed, checks.check_kill_switch_durable)
        checks.check_fail_closed(active, self.outside)
        checks.check_kill_switch_durable(active, self.outside, self.world.restarts)
        self._reconcile()

    def _call(self, operation, *args):
        """An API call; None when the engine did not answer."""
        try:
            return operation(*args)
        except EngineUnreachable as exc:
            self.outside.lags(f"unanswered: {exc}")
            return None

    def _reconcile(self) -> None:
        answer = self._call(self.adapter.reconcile)
        if answer is not None and answer.complete:
            STATS.checked(checks.check_converged)
            local = self.adapter.positions()
            checks.check_converged(local, self.world, "right after a reconcile reported success")
            self.outside.book_may_lag.clear()

    def _catch_up_with_the_stream(self) -> None:
        """Before the engine is looked at, it has handled everything the broker's trade
        stream sent it: the stream's real-time delivery must not decide what a step sees.
        An engine that does not say how far it read is looked at as it is."""
        try:
            caught_up = self.world.stream_caught_up()
        except (NotSupported, EngineUnreachable):
            return
        if not caught_up:
            note("the engine did not catch up with the broker's trade stream in time")
            event("trade stream not caught up")

    def _learn_deals(self) -> None:
        """Remember the deals the broker and the engine's book show now."""
        known = set(self.world.broker_positions())
        if self._engine_runs():
            # Which deals are known decides what a later deal index picks: learned only once
            # the engine has handled what the stream sent, so a replay learns them alike.
            self._catch_up_with_the_stream()
            local = self._call(self.adapter.positions)
            known |= set(local or ())
        self._deals += sorted(known - set(self._deals))

    def _deal_at(self, index: int, rule_name: str) -> str | None:
        """The deal `index` picks among those known now; None (noted) when none is."""
        if not self._deals:
            note(f"{rule_name}: no deal known yet, nothing to do")
            event(f"{rule_name}: no deal known")
            return None
        return self._deals[index % len(self._deals)]

    def _engine_runs(self) -> bool:
        """Whether the process is up and not paused, as it is now (read at run time only,
        never to choose what to draw)."""
        return self.world.alive and not self.world.process.paused

    def _alive_or_noted(self, rule_name: str) -> bool:
        """Whether the process is alive; when it died on its own, the rule that needs it is
        a no-op, noted (a precondition here would make the draws depend on the process)."""
        if self.world.alive:
            return True
        note(f"{rule_name}: the engine process is not running, nothing to do")
        event(f"{rule_name}: engine not running")
        return False

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def safety(self) -> None:
        """Every safety invariant holds after every step: the broker's truth against what
        the API answers and what the files say."""
        self.outside.raise_first()
        world = self.world
        if not self._engine_runs():
            return
        self._catch_up_with_the_stream()
        try:
            health = self.adapter.health()
            local = self.adapter.positions()
            active = self.adapter.kill_switch_status().active
        except EngineUnreachable:
            return
        STATS.checked(
            checks.check_no_silent_loss,
            checks.check_exactly_once_fills,
            checks.check_kill_switch_durable,
            checks.check_converged,
        )
        checks.check_no_silent_loss(world, self.outside, health)
        checks.check_exactly_once_fills(local, world)
        checks.check_kill_switch_durable(active, self.outside, world.restarts)
        if not self.outside.book_may_lag:
            checks.check_converged(local, world, "with nothing unseen since it last converged")

    def teardown(self) -> None:
        """The heal phase, then LIVENESS."""
        world = self.world
        try:
            if not self.outside.violations:
                STATS.checked(checks.check_liveness)
                try:
                    world.heal()
                    self._heal_reconcile()
                    health = self.adapter.health()
                    local = self.adapter.positions()
                    kill_switch = self.adapter.kill_switch_status().active
                except (EngineUnreachable, EngineDidNotStart) as exc:
                    raise InvariantViolation(LIVENESS, f"after healing: {exc}") from exc
                checks.check_liveness(local, world, health, kill_switch)
                self._ask_for_an_order_as_healed(kill_switch)
        finally:
            world.close()

    def _ask_for_an_order_as_healed(self, kill_switch: bool) -> None:
        """A healed engine trades: unless something the world did stands in the way, it
        fills an opening order (an engine refusing every order is safe and useless)."""
        in_the_way = checks.room_for_a_probe(self.world, kill_switch)
        if in_the_way is not None:
            note(f"no order asked of the healed engine: {in_the_way}")
            return
        STATS.checked(checks.check_a_healed_engine_trades)
        try:
            answer = self.adapter.submit(EPICS[0], BUY, checks.PROBE_SIZE)
        except EngineUnreachable:
            answer = None
        self.outside.raise_first()
        checks.check_a_healed_engine_trades(answer)

    def _heal_reconcile(self) -> None:
        """Reconcile until one succeeds and the engine trades again, letting in-doubt graces
        run out on the engine's clock. A restarted engine's trade stream reconnects in real
        time, and an engine is right to stay blind until a reconcile that started after the
        reconnection: so a succeeded reconcile that leaves it short of trading is retried
        after a short real-time pause, within a bound."""
        deadline = time.monotonic() + HEAL_STREAM_SECONDS
        for _ in range(HEAL_RECONCILES):
            self._catch_up_with_the_stream()
            answer = self._call(self.adapter.reconcile)
            if answer is not None and answer.complete:
                if self._trades_as_healed() or time.monotonic() > deadline:
                    return
                time.sleep(HEAL_PAUSE_SECONDS)
            with contextlib.suppress(NotSupported):
                self.world.clock.advance(self.adapter.advance_to_next_timer())

    def _trades_as_healed(self) -> bool:
        health = self._call(self.adapter.health)
        switch = self._call(self.adapter.kill_switch_status)
        if health is None or switch is None or health.trading_state is None:
            return True  # nothing more the heal phase can learn; LIVENESS judges
        return health.trading_state == checks.healed_trading_state(switch.active)


class OrderRules:
    """Trading through the API, and time passing on the engine's clock."""

    @rule(epic=st.sampled_from(EPICS), direction=st.sampled_from([BUY, SELL]), size=SIZES)
    def submit_order(self, epic, direction, size):
        _count("submit_order")
        answer = self._call(self.adapter.submit, epic, direction, size)
        if answer is not None:
            self.outside.order_answered(answer)
        self._learn_deals()

    @rule(deal_index=DEAL_INDICES, fraction=FRACTIONS)
    def close_position(self, deal_index, fraction):
        _count("close_position")
        deal = self._deal_at(deal_index, "close_position")
        if deal is None:
            return
        local = self._call(self.adapter.positions) or {}
        size = None if deal not in local or fraction == 1.0 else round(local[deal] * fraction, 2)
        answer = self._call(self.adapter.close, deal, size or None)
        if answer is not None:
            self.outside.order_answered(answer)
        self._learn_deals()

    @rule()
    def reconcile(self):
        _count("reconcile")
        self._reconcile()
        self._learn_deals()

    @rule(seconds=st.sampled_from([1.0, 31.0, 61.0, 3601.0]))
    def advance_clock(self, seconds):
        _count("advance_clock")
        try:
            self.adapter.advance_clock(seconds)
        except NotSupported:
            return
        self.world.clock.advance(seconds)

    @rule()
    def advance_to_next_timer(self):
        """The engine's clock moves to its next timer (a reconcile due, a balance expiring,
        an order's in-doubt grace ending), and the engine does what that timer does."""
        _count("advance_to_next_timer")
        with contextlib.suppress(NotSupported):
            self.world.clock.advance(self.adapter.advance_to_next_timer())
        # A timer may have reconciled; what it found is judged by the next reconcile.
        self._learn_deals()


class SwitchRules:
    """The operator's emergency stop."""

    @rule()
    def activate_kill_switch(self):
        _count("activate_kill_switch")
        answer = self._call(self.adapter.activate_kill_switch)
        if answer is not None:
            self.outside.kill_switch_said(answer.active, answer.persisted, activation=True)

    @rule()
    def deactivate_kill_switch(self):
        _count("deactivate_kill_switch")
        answer = self._call(self.adapter.deactivate_kill_switch)
        if answer is not None:
            self.outside.kill_switch_said(answer.active, answer.persisted, activation=False)


class BrokerRules:
    """What the broker does on its own, and its own fault seams."""

    @rule(epic=st.sampled_from(EPICS), size=SIZES)
    def open_on_the_dashboard(self, epic, size):
        _count("open_on_the_dashboard")
        try:
            confirm = self.world.sim.open_externally(epic, BUY, size)
        except ValueError:
            return  # the broker refused it (funds): nothing happened
        self.outside.lags(f"dashboard opened {confirm.deal_id}")
        self._learn_deals()

    @rule(deal_index=DEAL_INDICES, fraction=FRACTIONS)
    def close_on_the_dashboard(self, deal_index, fraction):
        _count("close_on_the_dashboard")
        deal = self._deal_at(deal_index, "close_on_the_dashboard")
        if deal is None:
            return
        position = self.world.broker_positions().get(deal)
        if position is None:
            return
        size = None if fraction == 1.0 else round(position * fraction, 2)
        self.world.sim.close_externally(deal, size or None)
        self.outside.lags(f"dashboard closed {size or 'all'} of {deal}")

    @rule(
        method=st.sampled_from(PORT_METHODS),
        error=st.sampled_from(sorted(ERRORS_BEFORE)),
        count=st.integers(1, 3),
    )
    def broker_fails_next(self, method, error, count):
        """The broker's next calls fail before it executes them (its own seams)."""
        _count("broker_fails_next")
        self.world.sim.fail_next(method, ERRORS_BEFORE[error](), count=count)

    @rule(
        method=st.sampled_from([OPEN_POSITION, CLOSE_POSITION]), error=st.sampled_from(ERRORS_AFTER)
    )
    def broker_executes_but_the_answer_is_lost(self, method, error):
        _count("broker_executes_but_the_answer_is_lost")
        self.world.sim.fail_next(method, ERRORS_BEFORE[error](), after_execute=True)

    @rule(method=st.sampled_from([OPEN_POSITION, CLOSE_POSITION]), fraction=st.sampled_from([0.5]))
    def broker_fills_partially(self, method, fraction):
        _count("broker_fills_partially")
        self.world.sim.fill_fraction(fraction, method=method)


class NetworkRules:
    """The TCP connection between the engine and the broker breaks."""

    @rule(
        fault=st.sampled_from(list(ProxyFault)),
        calls=st.sampled_from(sorted(TCP_TARGETS)),
        after=st.booleans(),
    )
    def tcp_fault(self, fault, calls, after):
        """The next broker call of `calls` meets a broken connection: reset (before the
        broker, or `after` it acted), half-open, trickled, or its answer cut mid-body."""
        _count("tcp_fault")
        proxy = self.world.proxy
        method, path = TCP_TARGETS[calls]
        if fault is ProxyFault.RESET:
            proxy.reset(method, path, after=after)
        elif fault is ProxyFault.HANG:
            proxy.hang(method, path)
        elif fault is ProxyFault.TRICKLE:
            proxy.trickle(method, path, chunk=64)
        else:
            proxy.close_mid_body(method, path)


class ProcessRules:
    """The process dies, pauses, and its disk fills up."""

    @rule(rot_kill_switch_file=st.booleans())
    def kill_and_restart(self, rot_kill_switch_file):
        """SIGKILL; the files it left are judged; maybe the kill switch file rots while it
        is down; a new process starts on the same data directory."""
        _count("kill_and_restart")
        if not self._alive_or_noted("kill_and_restart"):
            return
        world = self.world
        world.kill()
        STATS.checked(checks.check_files_after_kill)
        checks.check_files_after_kill(world, self.outside)
        path = self.adapter.kill_switch_path()
        if rot_kill_switch_file and path is not None and os.path.exists(path):
            # Over its first bytes, in place: rot needs no free space.
            with open(path, "r+b") as state:
                state.write(b"\x00rot")
            self.outside.kill_switch_file_rotted = True
        self.outside.lags("the engine restarted")
        self._start(world.restart)
        self._learn_deals()

    @rule(then_kill=st.booleans())
    def process_pauses(self, then_kill):
        """SIGSTOP while an order is sent to it; then SIGCONT (the order is answered late)
        or SIGKILL and a restart (it never was)."""
        _count("process_pauses")
        if not self._alive_or_noted("process_pauses"):
            return
        world = self.world
        answers = []

        def send() -> None:
            try:
                answers.append(self.adapter.submit(EPICS[0], BUY, 1.0))
            except EngineUnreachable:
                answers.append(None)

        world.process.pause()
        sender = threading.Thread(target=send, name="paused-order")
        sender.start()
        time.sleep(PAUSE_SECONDS)
        if then_kill:
            world.kill()
            sender.join()
            self.outside.lags("an order was sent to a paused engine that was then killed")
            self._start(world.restart)
        else:
            world.process.resume()
            sender.join()
            if answers and answers[0] is not None:
                self.outside.order_answered(answers[0])
        self._learn_deals()

    # Both read only what earlier draws decided (disk_full is set by these two rules alone)
    # and the host's support for a tmpfs, which a run does not change.
    @precondition(lambda self: self.disk_off is None and not self.world.disk_full)
    @rule()
    def disk_fills_up(self):
        """The data directory's file system runs out of space (a real ENOSPC)."""
        _count("disk_fills_up")
        self.world.fill_disk()

    @precondition(lambda self: self.world.disk_full)
    @rule()
    def disk_recovers(self):
        _count("disk_recovers")
        self.world.make_room()


class ProcessMachine(
    ProcessChaosMachine, OrderRules, SwitchRules, BrokerRules, NetworkRules, ProcessRules
):
    """Everything at once: every rule against one engine process."""


class ProcessBrokerMachine(ProcessChaosMachine, OrderRules, BrokerRules, NetworkRules):
    """The broker's faults, lies and broken connections against the engine's book."""


class ProcessRecoveryMachine(ProcessChaosMachine, SwitchRules, ProcessRules):
    """Kills, pauses and a full disk against the kill switch (orders come from pauses)."""


PROCESS_MACHINES: dict[str, type[ProcessChaosMachine]] = {
    "process": ProcessMachine,
    "process-broker": ProcessBrokerMachine,
    "process-recovery": ProcessRecoveryMachine,
}


def process_machines(adapter_cls: type[EngineAdapter]) -> dict[str, type[ProcessChaosMachine]]:
    """The process machines for the engine `adapter_cls` speaks to, by name."""
    machines = {}
    for key, machine in PROCESS_MACHINES.items():
        name = f"{machine.__name__}[{adapter_cls.__name__}]"
        attributes = {"adapter_cls": adapter_cls, "__qualname__": name, "__module__": __name__}
        machines[key] = type(name, (machine,), attributes)
    return machines
