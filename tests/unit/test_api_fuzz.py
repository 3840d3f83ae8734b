"""Schemathesis fuzzes the service in-process from its own OpenAPI document: every endpoint,
with and without the token. Checks: no 5xx, every answer conforms to the document (status
and body), and no mutating call succeeds without the token.

The engine behind the app is the real core on a real data directory, talking to the
SimBroker through IGRestBroker in-process; it is reconciled first, so orders and closes reach
the broker and the fuzzer's mutations change real state."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from solat_chaos.api.app import create_app
from solat_chaos.api.token import bearer_matches
from solat_chaos.broker.harness import ig_rest_view
from solat_chaos.broker.sim import SimBroker
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.filesystem import OsFileSystem

TOKEN = "fuzz-token-0123456789"


def _service() -> Starlette:
    """The app over a fresh engine on a temporary data directory (removed at exit)."""
    data_dir = tempfile.mkdtemp(prefix="solat-api-fuzz-")
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    broker = ig_rest_view(SimBroker())
    engine = Engine.open(data_dir, broker, fs=OsFileSystem(), clock=SimClock())
    return create_app(engine, TOKEN, tick_interval=None)


# Built at import: schemathesis parametrizes from the document the app serves.
schema = schemathesis.openapi.from_asgi("/openapi.json", _service())


@pytest.fixture(scope="module", autouse=True)
def reconciled() -> None:
    """The engine reconciles first, so orders reach the broker while the fuzzer runs."""
    case = schema["/execution/reconcile"]["POST"].Case(headers={"Authorization": f"Bearer {TOKEN}"})
    assert case.call().json()["ok"] is True


def mutation_needs_token(ctx, response, case) -> None:
    """No POST succeeds without the token (the fuzzer's client is not on loopback, so not
    even kill-switch activation)."""
    if case.method.upper() != "POST":
        return
    authorization = response.request.headers.get("Authorization")
    if 200 <= response.status_code < 300 and not bearer_matches(authorization, TOKEN):
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} without the token"
        )


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def _call_with(case, authorization: str | None) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    case.headers = headers
    case.validate_response(case.call(), checks=[*CHECKS, mutation_needs_token])


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_with_the_token(case) -> None:
    _call_with(case, f"Bearer {TOKEN}")


@schema.parametrize()
@FUZZ
def test_without_the_token(case) -> None:
    _call_with(case, None)


@schema.parametrize()
@FUZZ
def test_with_a_wrong_token(case) -> None:
    _call_with(case, f"Bearer {TOKEN}x")
