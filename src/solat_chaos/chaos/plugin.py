"""The pytest plugin of solat_chaos (entry point `pytest11`: `solat_chaos`).

Loaded by pytest in any project that installs solat_chaos. It provides:

- the markers `chaos`, `tier1` … `tier4` and `stateful`, declared here so `--strict-markers`
  accepts them anywhere; a test marked with a tier is marked `chaos` too, so
  `-m "not chaos"` never runs a tier test;
- `--chaos-seed N` (or `random`): the seed of every `seed_random`, shown in the report header
  so a run replays; default `DEFAULT_CHAOS_SEED`;
- fixtures, all synchronous (an async test opens its own IGRestBroker with `async with`):

  | fixture           | what                                                             |
  |-------------------|------------------------------------------------------------------|
  | `seed_random`     | `random.Random` seeded from the chaos seed and the test's id      |
  | `sim_clock`       | a `SimClock`                                                     |
  | `sim_fs`          | a `SimFileSystem`                                                |
  | `sim_broker`      | a `SimBroker` stamping with `sim_clock`: the broker's truth      |
  | `engine_env`      | `EngineEnv` on `sim_fs` at `DATA_DIR`, talking to `sim_broker`   |
  | `os_engine_env`   | `EngineEnv` on the real disk (`OsFileSystem`, under tmp_path)    |
  | `disk_chaos`      | `DiskChaos` on `sim_fs`                                          |
  | `broker_chaos`    | `BrokerChaos` on `sim_broker` and `engine_env`'s port            |
  | `network_chaos`   | `NetworkChaos`: respx faults in front of `sim_broker`'s HTTP app |
  | `sim_stream`      | a `SimTradeStream` carrying `sim_broker`'s events                |
  | `stream_chaos`    | `StreamChaos` on `sim_stream`                                    |
  | `loopback_broker` | `sim_broker` served over HTTP by uvicorn on 127.0.0.1            |
  | `tcp_fault_proxy` | a `TcpFaultProxy` in front of `loopback_broker`                  |
  | `tiny_tmpfs`      | a 64 KiB tmpfs mounted for the test (skipped where not allowed)  |
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from solat_chaos.broker.ig_http import LoopbackServer, create_app
from solat_chaos.broker.sim import SimBroker
from solat_chaos.broker.sim_stream import SimTradeStream
from solat_chaos.chaos.broker import BrokerChaos
from solat_chaos.chaos.disk import DiskChaos, MountNotPermitted, TinyTmpfs
from solat_chaos.chaos.engine_env import EngineEnv
from solat_chaos.chaos.network import NetworkChaos
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.chaos.stream import StreamChaos
from solat_chaos.chaos.tcp_proxy import TcpFaultProxy
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.filesystem import OsFileSystem

DEFAULT_CHAOS_SEED = 20_240_917
DATA_DIR = "/srv/solat"
TIERS = ("tier1", "tier2", "tier3", "tier4")
MARKERS = {
    "chaos": "a chaos test (fault injection); deselect with -m 'not chaos'",
    "tier1": "tier 1, data corruption (blocker for LIVE)",
    "tier2": "tier 2, state inconsistency",
    "tier3": "tier 3, operational blindness",
    "tier4": "tier 4, recovery scenarios",
    "stateful": "a Hypothesis state machine",
}

_SEED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("solat_chaos")
    group.addoption(
        "--chaos-seed",
        dest="chaos_seed",
        default=None,
        metavar="N|random",
        help=f"seed of the seed_random fixture (default {DEFAULT_CHAOS_SEED}; "
        "'random' draws one and prints it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    # An xdist worker takes the seed its controller drew: the one the run prints for replay.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[_SEED] = workerinput["chaos_seed"]
    else:
        config.stash[_SEED] = _parse_seed(config.getoption("chaos_seed", None))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called when it is installed
def pytest_configure_node(node) -> None:
    node.workerinput["chaos_seed"] = node.config.stash[_SEED]


def _parse_seed(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_CHAOS_SEED
    if raw == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"--chaos-seed takes an integer or 'random', not {raw!r}") from None


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.stash[_SEED]
    return f"solat_chaos: chaos seed {seed} (replay with --chaos-seed={seed})"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    # The header is hidden under -q: a run that failed, or drew its seed, says it again.
    if terminalreporter.stats.get("failed") or config.getoption("chaos_seed", None) == "random":
        terminalreporter.write_line(pytest_report_header(config))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A tier is a kind of chaos test: selecting by `chaos` must never miss one.
    for item in items:
        tiered = any(item.get_closest_marker(tier) for tier in TIERS)
        if tiered and not item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.chaos)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chaos_seed(pytestconfig: pytest.Config) -> int:
    """The run's chaos seed (`--chaos-seed`)."""
    return pytestconfig.stash[_SEED]


@pytest.fixture
def seed_random(chaos_seed: int, request: pytest.FixtureRequest) -> random.Random:
    """A `random.Random` seeded from the chaos seed and this test's id: the same stream for
    the same test and seed, whichever other tests run."""
    return random.Random(f"{chaos_seed}:{request.node.nodeid}")


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def sim_fs() -> SimFileSystem:
    return SimFileSystem()


@pytest.fixture
def sim_broker(sim_clock: SimClock) -> SimBroker:
    return SimBroker(clock=sim_clock)


@pytest.fixture
def engine_env(sim_fs: SimFileSystem, sim_clock: SimClock, sim_broker: SimBroker) -> EngineEnv:
    return EngineEnv.on(sim_fs, DATA_DIR, sim_clock, sim_broker)


@pytest.fixture
def os_engine_env(tmp_path, sim_clock: SimClock, sim_broker: SimBroker) -> Iterator[EngineEnv]:
    with OsFileSystem() as fs:
        yield EngineEnv.on(fs, str(tmp_path / "solat"), sim_clock, sim_broker)


@pytest.fixture
def disk_chaos(sim_fs: SimFileSystem) -> DiskChaos:
    return DiskChaos(sim_fs)


@pytest.fixture
def broker_chaos(engine_env: EngineEnv) -> BrokerChaos:
    return BrokerChaos(engine_env.sim, engine_env.port)


@pytest.fixture
def network_chaos(sim_broker: SimBroker, sim_clock: SimClock) -> NetworkChaos:
    return NetworkChaos(sim_broker, clock=sim_clock)


@pytest.fixture
def sim_stream(sim_broker: SimBroker, sim_clock: SimClock) -> SimTradeStream:
    """The trade stream of `sim_broker`; hand it to `engine_env.ready_engine(stream=...)`."""
    return SimTradeStream(sim_broker, sim_clock)


@pytest.fixture
def stream_chaos(sim_stream: SimTradeStream) -> StreamChaos:
    return StreamChaos(sim_stream)


@pytest.fixture
def loopback_broker(sim_broker: SimBroker) -> Iterator[LoopbackServer]:
    """`sim_broker` in IG's REST dialect on a free 127.0.0.1 port (uvicorn, own thread)."""
    with LoopbackServer(create_app(sim_broker)) as server:
        yield server


@pytest.fixture
def tcp_fault_proxy(loopback_broker: LoopbackServer) -> Iterator[TcpFaultProxy]:
    """A TCP fault proxy in front of `loopback_broker`; IG's API is at
    `tcp_fault_proxy.base_url + "/gateway/deal"`."""
    with TcpFaultProxy(loopback_broker.port) as proxy:
        yield proxy


@pytest.fixture
def tiny_tmpfs(tmp_path) -> Iterator[TinyTmpfs]:
    """A 64 KiB tmpfs mounted for this test and always unmounted; skipped, saying why,
    where mounting is not permitted (not root, no CAP_SYS_ADMIN, no mount tool)."""
    tmpfs = TinyTmpfs(os.path.join(tmp_path, "tmpfs"))
    try:
        tmpfs.mount()
    except MountNotPermitted as e:
        pytest.skip(f"real ENOSPC on a tiny tmpfs needs a mount: {e}")
    try:
        yield tmpfs
    finally:
        tmpfs.unmount()
