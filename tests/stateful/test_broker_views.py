"""The rest broker view: the machines run with the engine's broker port being the IG REST
adapter over HTTP onto the sim, and `explore --broker-view rest` / `replay` carry the view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.cli import main
from solat_chaos.engine.broker import BrokerUnavailable
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.model.artifacts import read
from solat_chaos.model.invariants import CONVERGENCE, OUTCOME_TRUTHFUL
from solat_chaos.model.machines import MACHINES, BrokerRules, ChaosMachine, OrderRules
from solat_chaos.model.regression import write_test
from solat_chaos.model.stats import STATS
from solat_chaos.model.views import REST, SIM, in_broker_view
from solat_chaos.model.world import World

from ..planted_bugs import planted
from .test_catches_planted_bugs import BUDGET

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

EURUSD = "CS.D.EURUSD.TODAY.IP"


@pytest.fixture
def adapter_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the IG adapter sends (method and path)."""
    calls: list[str] = []
    call = IGRestBroker._call

    async def counted(self, method, path, **kwargs):
        calls.append(f"{method} {path}")
        return await call(self, method, path, **kwargs)

    monkeypatch.setattr(IGRestBroker, "_call", counted)
    return calls


@pytest.mark.parametrize("name", list(MACHINES))
def test_every_machine_holds_in_the_rest_view(name: str, adapter_calls: list[str]) -> None:
    machine = MACHINES[name]
    STATS.reset()
    with in_broker_view(machine, REST):
        run_state_machine_as_test(
            machine, settings=settings(BUDGET, max_examples=6, stateful_step_count=15)
        )
    assert STATS.examples >= 6
    assert any(call.startswith("GET /positions") for call in adapter_calls)
    assert machine.broker_view == SIM  # the class is left as it was


def test_the_rest_view_goes_over_http_and_logs_in_again(adapter_calls: list[str]) -> None:
    world = World(broker_view=REST)
    try:
        assert world.start("reconcile", world.engine.reconcile()).result().ok
        world.expire_broker_sessions()
        assert world.start("reconcile", world.engine.reconcile()).result().ok
        assert world.ig_app.state.ig.logins == 2
        assert adapter_calls
    finally:
        world.close()


@pytest.mark.parametrize("view", [SIM, REST])
def test_a_failed_confirm_poll_leaves_the_order_in_doubt_in_both_views(view: str) -> None:
    world = World(broker_view=view)
    try:
        world.start("reconcile", world.engine.reconcile())
        world.sim.fail_next("confirm", BrokerUnavailable("refused"), after_order=True)
        submitted = world.start(
            "submit", world.engine.submit_order_intent(OrderIntent(EURUSD, "BUY", 1.0))
        )
        assert submitted.result().status is OrderStatus.IN_DOUBT
        assert len(world.sim.snapshot_positions()) == 1
    finally:
        world.close()


def test_an_unknown_broker_view_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown broker view 'http'"):
        World(broker_view="http")


class OrdersAndLostAnswers(ChaosMachine):
    """A machine small enough to shrink in a moment: orders, and the broker losing answers."""

    submit_order = OrderRules.submit_order
    broker_executes_but_the_answer_is_lost = BrokerRules.broker_executes_but_the_answer_is_lost


def test_explore_in_the_rest_view_finds_an_adapter_bug_and_replay_uses_the_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(tmp_path / "examples"))
    machines = {"orders": OrdersAndLostAnswers}
    failures = tmp_path / "failures"
    # Short examples and no explain phase: every example of a rest run is HTTP all the way.
    settings.register_profile(
        "broker-views-test",
        settings.get_profile("ci"),
        stateful_step_count=10,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )
    explore = ["explore", "--max-examples", "50", "--seed", "3", "--failures-dir", str(failures)]
    explore += ["--profile", "broker-views-test"]
    with planted("confirm_poll_failure_is_rejected"):
        assert main([*explore, "--broker-view", "rest"], machines=machines) == 1
        (artifact,) = failures.glob("*.json")
        recorded = json.loads(artifact.read_text())
        assert recorded["broker_view"] == REST
        assert recorded["invariant"] in (OUTCOME_TRUTHFUL, CONVERGENCE)
        assert main(["replay", str(artifact)], machines=machines) == 1
        regression = write_test(read(artifact), tmp_path / "regression").read_text()
        assert "with in_broker_view(OrdersAndLostAnswers, 'rest'):" in regression
        compile(regression, "regression", "exec")
        # The same steps on the sim port pass: replay runs the view the artifact names.
        in_sim = tmp_path / "in-sim.json"
        in_sim.write_text(json.dumps({**recorded, "broker_view": SIM}))
        assert main(["replay", str(in_sim)], machines=machines) == 0
    assert main(["replay", str(artifact)], machines=machines) == 0


def test_explore_refuses_the_rest_view_for_the_process_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explore", "--target", "process", "--broker-view", "rest"]) == 2
    assert "--broker-view is for --target core" in capsys.readouterr().err
