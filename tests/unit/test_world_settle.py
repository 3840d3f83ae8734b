"""World.settle: how far it runs the event loop. Every interleaving the machines explore
depends on where a settle stops, so these pin it: a task that never stops yielding runs
exactly as many steps as SETTLE_YIELDS allows, and a task waiting on a held answer stops the
settle at once (the loop is idle)."""

from __future__ import annotations

import asyncio

from solat_chaos.model.world import SETTLE_YIELDS, World


def test_a_task_that_always_yields_runs_settle_yields_plus_two_steps() -> None:
    world = World()
    steps = []

    async def spin() -> None:
        while True:
            steps.append(world.loop.scheduled)
            await asyncio.sleep(0)

    try:
        world.start("spin", spin())
        # Its first step, one beside each of the settle's yields, and one beside its stop.
        assert len(steps) == SETTLE_YIELDS + 2
        steps.clear()
        world.settle()
        assert len(steps) == SETTLE_YIELDS + 2
    finally:
        world.close()


def test_a_task_waiting_on_an_answer_stops_the_settle_at_once() -> None:
    world = World()
    trail = []
    answer = world.loop.create_future()

    async def waits() -> None:
        trail.append("waiting")
        trail.append(await answer)

    try:
        before = world.loop.scheduled
        world.start("waits", waits())
        assert trail == ["waiting"]
        # The task's first step and two of the settle's yields, then the stop: no spinning.
        assert world.loop.scheduled - before == 4
        answer.set_result("answered")
        world.settle()
        assert trail == ["waiting", "answered"]
        assert not world.running()
    finally:
        world.close()


def test_a_settle_runs_every_task_to_its_end() -> None:
    world = World()
    trail = []

    async def steps(name: str, count: int) -> None:
        for step in range(count):
            trail.append((name, step))
            await asyncio.sleep(0)

    try:
        world.start("a", steps("a", 3))
        world.start("b", steps("b", 2))
        assert trail == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
        assert not world.running()
    finally:
        world.close()


def test_running_tasks_and_their_errors_are_read_across_a_crash() -> None:
    """The world counts the tasks already done once (a done task never runs again); a crash
    clears its tasks and that count: a task started after it is seen running, then its
    error is reported, and the dead process's error is not."""
    world = World()
    answer = world.loop.create_future()

    async def fails(message: str) -> None:
        raise ValueError(message)

    async def fails_when_answered() -> None:
        await answer
        raise ValueError("after the crash")

    try:
        world.start("fails", fails("before the crash"))
        assert [str(e) for e in world.engine_errors()] == ["before the crash"]
        assert not world.running()
        world.crash_and_restart(0)
        assert world.engine_errors() == []
        world.start("waits", fails_when_answered())
        world.start("fails", fails("beside it"))
        assert [t.kind for t in world.running()] == ["waits"]
        assert [str(e) for e in world.engine_errors()] == ["beside it"]
        answer.set_result(None)
        world.settle()
        assert not world.running()
        assert [str(e) for e in world.engine_errors()] == ["after the crash", "beside it"]
    finally:
        world.close()
