"""A pytest plugin that plants bugs in the core for chosen tests, to prove those tests can fail.

    pytest -p tests.tiers.plant_bugs_plugin --plant-bug BUG=TEST_NAME [--plant-bug ...] NODEIDS

For each test whose function name is TEST_NAME, bug BUG from `tests/planted_bugs.py` (a real
monkeypatch of the core's classes) is applied for the duration of that test only. Loaded with
`-p` in a separate process, never by a conftest, so no normal run ever carries a bug.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.planted_bugs import BUGS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--plant-bug",
        action="append",
        default=[],
        metavar="BUG=TEST_NAME",
        help=f"plant BUG in the core while TEST_NAME runs; bugs: {', '.join(sorted(BUGS))}",
    )


def _plantings(config: pytest.Config) -> dict[str, str]:
    """{test function name: bug name}, from the --plant-bug options."""
    plantings = {}
    for option in config.getoption("plant_bug"):
        bug, sep, test_name = option.partition("=")
        if not sep or bug not in BUGS or not test_name:
            raise pytest.UsageError(f"--plant-bug takes BUG=TEST_NAME with a known BUG: {option!r}")
        plantings[test_name] = bug
    return plantings


@pytest.fixture(autouse=True)
def _planted_bug(request: pytest.FixtureRequest) -> Iterator[None]:
    bug = _plantings(request.config).get(request.node.originalname)
    if bug is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        BUGS[bug].apply(patch)
        yield
