"""Two small state machines standing in for the real ones in tests of explore and replay.

They keep the contract of `solat_chaos.model.machines`: they bump `STATS` and fail with
`InvariantViolation`. `ToyBankMachine` tests a tiny account whose overdraft check can be
switched off (`plant_overdraft_bug`), which every example with a withdrawal larger than the
balance then finds as RISK_LIMITS. `ToyQueueMachine` has no bug to find. `ToyDriftingMachine`
(not in TOY_MACHINES) fails every example, but what it draws depends on a counter outside
Hypothesis, as a machine whose draws depend on a real process's answers would: Hypothesis
cannot replay its failure.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from solat_chaos.model.invariants import RISK_LIMITS, STREAM_GAPLESS, InvariantViolation
from solat_chaos.model.stats import STATS

# The planted bug: withdrawals skip the balance check. Only tests switch it on.
OVERDRAFT_BUG = False


def plant_overdraft_bug(on: bool = True) -> None:
    """Switch the bug in this process; picklable, so explore can run it in each worker."""
    global OVERDRAFT_BUG
    OVERDRAFT_BUG = on


class ToyAccount:
    """The toy 'core': refuses a withdrawal the balance does not cover."""

    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> None:
        self.balance += amount

    def withdraw(self, amount: int) -> bool:
        if amount > self.balance and not OVERDRAFT_BUG:
            return False
        self.balance -= amount
        return True


class _Counted(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        STATS.examples += 1

    @staticmethod
    def step(name: str) -> None:
        STATS.ran(name)


class ToyBankMachine(_Counted):
    def __init__(self) -> None:
        super().__init__()
        self.account = ToyAccount()

    @rule(amount=st.integers(1, 10))
    def deposit(self, amount: int) -> None:
        self.step("deposit")
        self.account.deposit(amount)

    @rule(amount=st.integers(1, 10))
    def withdraw(self, amount: int) -> None:
        self.step("withdraw")
        self.account.withdraw(amount)

    @invariant()
    def never_overdrawn(self) -> None:
        STATS.invariant_checks += 1
        if self.account.balance < 0:
            raise InvariantViolation(RISK_LIMITS, f"balance {self.account.balance} below 0")


class ToyQueueMachine(_Counted):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []
        self.received: list[int] = []

    @rule()
    def send(self) -> None:
        self.step("send")
        self.sent.append(len(self.sent))

    @rule()
    def deliver(self) -> None:
        self.step("deliver")
        if len(self.received) < len(self.sent):
            self.received.append(self.sent[len(self.received)])

    @invariant()
    def in_order(self) -> None:
        STATS.invariant_checks += 1
        if self.received != self.sent[: len(self.received)]:
            raise InvariantViolation(STREAM_GAPLESS, f"received {self.received}")


class ToyDriftingMachine(_Counted):
    # Examples started in this process: what each draws depends on it (on purpose).
    started = 0

    def __init__(self) -> None:
        super().__init__()
        ToyDriftingMachine.started += 1
        self.drifted: object = None

    @rule(data=st.data())
    def drift(self, data: st.DataObject) -> None:
        self.step("drift")
        # Each example draws from another range: a replay never draws alike.
        self.drifted = data.draw(st.integers(0, ToyDriftingMachine.started))
        raise InvariantViolation(RISK_LIMITS, f"drifted to {self.drifted!r}")


TOY_MACHINES = {"bank": ToyBankMachine, "queue": ToyQueueMachine}
