"""The core reaches the world only through its ports: it imports no test or chaos code; the
service (api/) builds on the engine and the broker only."""

from __future__ import annotations

import ast
import pathlib

import solat_chaos.api
import solat_chaos.engine

FORBIDDEN = ("hypothesis", "pytest", "respx", "solat_chaos.chaos", "solat_chaos.model")


def imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_engine_imports_nothing_from_tests_chaos_or_model() -> None:
    engine_dir = pathlib.Path(solat_chaos.engine.__file__).parent
    offenders = {
        f"{path.name}: {name}"
        for path in engine_dir.glob("*.py")
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert offenders == set()


def test_the_service_imports_only_the_engine_and_the_broker() -> None:
    api_dir = pathlib.Path(solat_chaos.api.__file__).parent
    offenders = {
        f"{path.name}: {name}"
        for path in api_dir.glob("*.py")
        for name in imported_modules(path)
        if name in ("hypothesis", "pytest")
        or (
            name.startswith("solat_chaos.")
            and not name.startswith(("solat_chaos.engine", "solat_chaos.broker", "solat_chaos.api"))
        )
    }
    assert offenders == set()
