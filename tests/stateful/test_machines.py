"""Every machine, run under the active Hypothesis profile (`ci` by default): the unmodified
core must hold every invariant in every interleaving the budget reaches."""

from __future__ import annotations

import pytest

from solat_chaos.model.machines import (
    BrokerMachine,
    DiskMachine,
    EngineMachine,
    RecoveryMachine,
    StreamMachine,
)

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

TestEngineMachine = EngineMachine.TestCase
TestDiskMachine = DiskMachine.TestCase
TestBrokerMachine = BrokerMachine.TestCase
TestStreamMachine = StreamMachine.TestCase
TestRecoveryMachine = RecoveryMachine.TestCase
