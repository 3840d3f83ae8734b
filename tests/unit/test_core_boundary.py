"""The core reaches the world only through its ports: it imports no test or chaos code; the
service (api/) builds on the engine and the broker only."""

from __future__ import annotations

import ast
import pathlib
import types
from collections.abc import Callable

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


def offending_imports(package: types.ModuleType, forbidden: Callable[[str], bool]) -> set[str]:
    """`file: module` for every module a file of `package` imports that is `forbidden`."""
    directory = pathlib.Path(package.__file__).parent
    return {
        f"{path.name}: {name}"
        for path in directory.glob("*.py")
        for name in imported_modules(path)
        if forbidden(name)
    }


def test_the_engine_imports_nothing_from_tests_chaos_or_model() -> None:
    offenders = offending_imports(
        solat_chaos.engine,
        lambda name: any(name == f or name.startswith(f + ".") for f in FORBIDDEN),
    )
    assert offenders == set()


def test_the_service_imports_only_the_engine_and_the_broker() -> None:
    allowed = ("solat_chaos.engine", "solat_chaos.broker", "solat_chaos.api")
    offenders = offending_imports(
        solat_chaos.api,
        lambda name: (
            name in ("hypothesis", "pytest")
            or (name.startswith("solat_chaos.") and not name.startswith(allowed))
        ),
    )
    assert offenders == set()
