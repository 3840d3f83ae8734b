"""The unit tests' engine environment: the chaos plugin's public one, so there is one copy."""

from __future__ import annotations

from solat_chaos.chaos.engine_env import (
    EURUSD,
    GBPUSD,
    EngineEnv,
    HookedBroker,
    records_of,
    records_on_disk,
)

__all__ = ["EURUSD", "GBPUSD", "EngineEnv", "HookedBroker", "records_of", "records_on_disk"]
