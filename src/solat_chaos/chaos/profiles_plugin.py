"""The pytest plugin `solat_chaos_profiles`: Hypothesis profile and example database per run.

Before Hypothesis reads its own options, the profile named by `--hypothesis-profile`, else
SOLAT_CHAOS_PROFILE, else `ci`, is loaded on the database of SOLAT_CHAOS_DB (see
`chaos.profiles`); a bad profile name or database stops pytest with a one-line usage error
instead of a traceback. The header of the run names the profile.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.errors import InvalidArgument

from solat_chaos.chaos.profiles import DatabaseError, configure


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: Hypothesis' own pytest_configure loads --hypothesis-profile and then derives
    # profiles from it (verbosity, explain); ours must be registered on the database first.
    try:
        configure(config.getoption("hypothesis_profile", None))
    except (InvalidArgument, DatabaseError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"solat_chaos: Hypothesis profile {settings.get_current_profile_name()!r}"
