"""The engine adapter contract: what an engine's adapter cannot support is reported NOT
CHECKED, and `--engine-adapter` names a loadable adapter or is refused with a reason."""

from __future__ import annotations

import pytest

from solat_chaos.cli import main
from solat_chaos.model.engine_adapter import (
    AdapterError,
    EngineAdapter,
    SolatEngineAdapter,
    load_adapter,
)
from solat_chaos.model.invariants import (
    AUDIT_BEFORE_BROKER,
    FAIL_CLOSED,
    REJECTED_JUSTIFIED,
    RISK_LIMITS,
)
from solat_chaos.model.process_checks import not_checked
from solat_chaos.model.process_machine import process_machines

from .planted_engine import PlantedSolatEngine


class ApiOnlyEngine(EngineAdapter):
    """An engine whose adapter speaks its API and reads none of its files."""


def test_what_an_adapter_cannot_read_is_not_checked() -> None:
    assert set(not_checked(ApiOnlyEngine())) == {
        AUDIT_BEFORE_BROKER,
        FAIL_CLOSED,
        RISK_LIMITS,
        REJECTED_JUSTIFIED,
    }
    assert not_checked(SolatEngineAdapter()) == {}
    machine = process_machines(ApiOnlyEngine)["process"]
    assert AUDIT_BEFORE_BROKER in machine.not_checked()


def test_an_adapter_is_loaded_by_module_and_class() -> None:
    assert load_adapter("tests.blackbox.planted_engine:PlantedSolatEngine") is PlantedSolatEngine


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("tests.blackbox.planted_engine", "module:Class"),
        ("no_such_module_here:Engine", "cannot import"),
        ("os.path:join", "not an EngineAdapter"),
    ],
)
def test_a_bad_adapter_is_refused_with_a_reason(spec: str, why: str) -> None:
    with pytest.raises(AdapterError, match=why):
        load_adapter(spec)


def test_explore_refuses_a_bad_adapter_before_running(capsys) -> None:
    assert main(["explore", "--target", "process", "--engine-adapter", "nope"]) == 2
    assert "module:Class" in capsys.readouterr().err
    assert main(["explore", "--engine-adapter", "tests.blackbox.planted_engine:X"]) == 2
