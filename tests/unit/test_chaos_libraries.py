"""The chaos libraries themselves: faults arm at once, lift cleanly, count down, replay from a
seed; the TCP proxy stays on loopback, frames HTTP correctly and never outlives `stop()`."""

from __future__ import annotations

import random
import re
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from solat_chaos.broker.ig_http import LoopbackServer
from solat_chaos.broker.sim import POSITIONS, SimBroker
from solat_chaos.chaos.broker import BrokerChaos
from solat_chaos.chaos.disk import DiskChaos, dev_full_at
from solat_chaos.chaos.engine_env import HookedBroker
from solat_chaos.chaos.network import NetworkChaos
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.chaos.tcp_proxy import TcpFaultProxy
from solat_chaos.engine.broker import BrokerRateLimited, BrokerTimeout, BrokerUnavailable

pytest_plugins = ["pytester"]


def test_a_disk_fault_is_armed_by_the_call_and_lifted_by_the_block() -> None:
    fs = SimFileSystem()
    disk = DiskChaos(fs)
    with disk.disk_full_on_write(3) as fault:
        with pytest.raises(OSError, match="No space left"):
            fs.append("/ledger", b"12345")
        assert fs.read("/ledger") == b"123"
    assert fault.lifted
    fs.append("/ledger", b"45")
    assert fs.read("/ledger") == b"12345"


def test_dev_full_gives_the_kernels_enospc_and_puts_the_file_back(tmp_path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"history\n")
    with dev_full_at(str(path)), open(path, "ab", buffering=0) as f, pytest.raises(OSError) as e:
        f.write(b"more")
    assert e.value.errno == 28
    assert path.read_bytes() == b"history\n" and not path.is_symlink()


async def timeouts_drawn(seed: int, calls: int = 20) -> list[bool]:
    """Which of `calls` positions reads timed out under intermittent_timeout(seed)."""
    sim = SimBroker()
    port = HookedBroker(sim)
    BrokerChaos(sim, port).intermittent_timeout(random.Random(seed), probability=0.5)
    timed_out = []
    for _ in range(calls):
        try:
            await port.positions()
            timed_out.append(False)
        except BrokerTimeout:
            timed_out.append(True)
    return timed_out


async def test_intermittent_timeouts_replay_from_the_seed() -> None:
    pattern = await timeouts_drawn(7)
    assert pattern == await timeouts_drawn(7)
    assert pattern != await timeouts_drawn(8)
    assert any(pattern) and not all(pattern)


async def test_broker_faults_count_down_then_the_broker_answers() -> None:
    sim = SimBroker()
    chaos = BrokerChaos(sim)
    chaos.rate_limit_429(method=POSITIONS, retry_after=3.0, count=2)
    for _ in range(2):
        with pytest.raises(BrokerRateLimited) as e:
            await sim.positions()
        assert e.value.retry_after == 3.0
    assert await sim.positions() == []
    chaos.unavailable(count=5)
    chaos.heal()
    assert await sim.positions() == []


async def test_network_faults_fall_through_to_the_broker_once_used_up() -> None:
    sim = SimBroker()
    network = NetworkChaos(sim)
    async with network.broker() as rest:
        with pytest.raises(LookupError):
            network.stale_data_response()
        network.connection_refused(count=1)
        with pytest.raises(BrokerUnavailable):
            await rest.positions()
        assert await rest.positions() == []
        network.intermittent_500(random.Random(1), probability=1.0)
        with pytest.raises(BrokerUnavailable):
            await rest.positions()
        network.heal()
        assert await rest.positions() == []


def test_the_proxy_talks_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        TcpFaultProxy(80, "10.0.0.1")


def chunked_app() -> Starlette:
    async def body():
        for part in (b'{"positions"', b": []", b"}"):
            yield part

    async def positions(request):
        return StreamingResponse(body(), media_type="application/json")

    return Starlette(routes=[Route("/positions", positions)])


def test_the_proxy_relays_chunked_answers_and_counts_faults_down() -> None:
    with LoopbackServer(chunked_app()) as server, TcpFaultProxy(server.port) as proxy:
        with httpx.Client(base_url=proxy.base_url, timeout=2.0) as client:
            proxy.reset("GET", "/positions", count=1)
            with pytest.raises(httpx.TransportError):
                client.get("/positions")
            for _ in range(2):  # kept alive: the second rides the same connection
                assert client.get("/positions").json() == {"positions": []}
        assert [(f.fault, f.path) for f in proxy.faulted] == [("reset", "/positions")]


def test_stop_ends_a_hanging_connection_promptly() -> None:
    with LoopbackServer(chunked_app()) as server:
        proxy = TcpFaultProxy(server.port, hang_limit=30.0).start()
        proxy.hang()
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5.0)
        client.sendall(b"GET /positions HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [f.fault for f in proxy.wait_for_faults(1)] == ["hang"]
        # Promptly: stop raises TimeoutError if a connection's thread outlives its 2 s, and
        # this one would hang for 30 s unless stop ends it.
        proxy.stop(timeout=2.0)
        assert client.recv(1024) == b""  # closed, not answered
        client.close()


def test_the_plugin_declares_markers_and_prints_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tier2
        def test_tiered(seed_random):
            assert 0 <= seed_random.random() < 1

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-m", "chaos", "--chaos-seed=5")
    result.stdout.fnmatch_lines(["solat_chaos: chaos seed 5 (replay with --chaos-seed=5)"])
    result.assert_outcomes(passed=1, deselected=1)
    refused = pytester.runpytest("--chaos-seed=five")
    assert "--chaos-seed takes an integer or 'random'" in refused.stderr.str()


def test_every_xdist_worker_uses_the_seed_the_run_prints(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import os
        from pathlib import Path

        def test_seed(chaos_seed):
            Path(os.environ["PYTEST_XDIST_WORKER"]).write_text(str(chaos_seed))
        """
    )
    # `each`: the test runs on both workers, so each must have been handed the seed.
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "--chaos-seed=random")
    result.assert_outcomes(passed=2)
    printed = re.search(r"chaos seed (\d+) \(replay", result.stdout.str()).group(1)
    assert [(pytester.path / w).read_text() for w in ("gw0", "gw1")] == [printed, printed]
