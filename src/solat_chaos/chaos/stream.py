"""Trade stream faults, named as the seed names the others, on a `SimTradeStream`.

Each method injects one fault the way IG's Lightstreamer stream really fails and returns an
`InjectedFault`: a plain call injects it, a `with` block also lifts it on exit (the stream
recovers). The broker's truth stays in the sim; the stream only carries it, or fails to.
"""

from __future__ import annotations

from collections.abc import Callable

from solat_chaos.broker.sim_stream import SimTradeStream
from solat_chaos.chaos.injected import InjectedFault


class StreamChaos:
    def __init__(self, stream: SimTradeStream) -> None:
        self.stream = stream
        self._lifts: list[InjectedFault] = []

    def silent_disconnect(self) -> InjectedFault:
        """The socket dies with no close frame: no event, no keepalive, no status change.
        Lifted, the client reconnects on a new session."""
        self.stream.silent_disconnect()
        return self._armed("silent disconnect", lambda: self.stream.new_session(replay=0))

    def stall(self, *, redeliver: int = 0) -> InjectedFault:
        """The session stalls; lifted, it recovers the same session and delivers what the
        server retained (re-sending the last `redeliver` updates too)."""
        self.stream.stall()
        return self._armed("stalled session", lambda: self.stream.recover(redeliver))

    def new_session(self, replay: int = 0) -> InjectedFault:
        """The connection drops and a new session starts, replaying only the `replay` most
        recent updates: what was missed beyond them is gone from the stream."""
        self.stream.new_session(replay)
        return self._armed(f"new session replaying {replay}", lambda: None)

    def replay_recent_history(self, n: int) -> InjectedFault:
        """A new session whose replay of recent history is `n` updates: shorter than the gap
        loses events, longer delivers events the engine already saw."""
        return self.new_session(replay=n)

    def drop_next_update(self, count: int = 1) -> InjectedFault:
        """The next `count` updates are lost; keepalives keep arriving."""
        self.stream.drop_next_update(count)
        return self._armed(f"drop {count} update(s)", self.stream.heal)

    def duplicate_updates(self, count: int = 2) -> InjectedFault:
        """The next `count` updates arrive twice."""
        self.stream.duplicate_updates(count)
        return self._armed(f"duplicate {count} update(s)", self.stream.heal)

    def delay_updates(self) -> InjectedFault:
        """Updates wait while keepalives continue; lifted, they arrive late."""
        self.stream.delay()
        return self._armed("delayed updates", self.stream.release)

    def reorder_next(self, count: int = 1) -> InjectedFault:
        """The next `count` changes arrive OPU first, CONFIRMS after."""
        self.stream.reorder_next(count)
        return self._armed(f"reorder {count} change(s)", self.stream.heal)

    def repeated_subscription(self) -> InjectedFault:
        """The TRADE subscription is confirmed a second time on the same session."""
        self.stream.resubscribe()
        return self._armed("repeated subscription", lambda: None)

    def heal(self) -> None:
        """Lift every fault armed here; the stream is healthy again."""
        for fault in reversed(self._lifts):
            fault.lift()
        self._lifts.clear()
        self.stream.heal()

    def _armed(self, description: str, lift: Callable[[], None]) -> InjectedFault:
        fault = InjectedFault(description, lift)
        self._lifts.append(fault)
        return fault
