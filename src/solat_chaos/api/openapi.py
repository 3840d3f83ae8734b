"""The API's contract as an OpenAPI 3.1 document: what `GET /openapi.json` serves, what the
request validation enforces, and what Schemathesis fuzzes the app from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from solat_chaos.engine.broker import DIRECTIONS

REASON_MAX = 200
DEAL_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(name: str, *, required: bool) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "the body is not a JSON object",
        401: "the bearer token is missing or wrong",
        404: "no such path or open position",
        405: "method not allowed",
        422: "a field is missing, unknown or invalid (named in `field`)",
    }
    return {str(s): _json(_ref("Error"), meaning[s]) for s in statuses}


def request_schemas(epics: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The request bodies; `app.py` validates against exactly these."""
    reason = {"type": "string", "maxLength": REASON_MAX}
    return {
        "SwitchRequest": {
            "type": "object",
            "properties": {"reason": reason},
            "additionalProperties": False,
        },
        "OrderIntent": {
            "type": "object",
            "properties": {
                "epic": {"type": "string", "enum": sorted(epics)},
                "direction": {"type": "string", "enum": list(DIRECTIONS)},
                "size": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["epic", "direction", "size"],
            "additionalProperties": False,
        },
        "CloseRequest": {
            "type": "object",
            "properties": {"size": {"type": "number", "exclusiveMinimum": 0}},
            "additionalProperties": False,
        },
    }


def _response_schemas() -> dict[str, dict[str, Any]]:
    return {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "field": _NULLABLE_STRING},
            "required": ["error", "field"],
        },
        "SwitchStatus": {
            "type": "object",
            "properties": {
                "active": {"type": "boolean"},
                "persisted": {"type": "boolean"},
                "reason": {"type": "string"},
                "changed_at": _NULLABLE_NUMBER,
            },
            "required": ["active", "persisted", "reason", "changed_at"],
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "trading_state": {"type": "string"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "ages": {"type": "object", "additionalProperties": _NULLABLE_NUMBER},
                "stale": {"type": "object", "additionalProperties": {"type": "boolean"}},
                "outcomes_pending": {"type": "integer"},
                "in_doubt": {"type": "integer"},
                "kill_switch_active": {"type": "boolean"},
            },
            "required": [
                "status",
                "trading_state",
                "reasons",
                "ages",
                "stale",
                "outcomes_pending",
                "in_doubt",
                "kill_switch_active",
            ],
        },
        "Position": {
            "type": "object",
            "properties": {
                "deal_id": {"type": "string"},
                "deal_reference": {"type": "string"},
                "epic": {"type": "string"},
                "direction": {"type": "string"},
                "size": {"type": "number"},
            },
            "required": ["deal_id", "deal_reference", "epic", "direction", "size"],
        },
        "Positions": {
            "type": "object",
            "properties": {"positions": {"type": "array", "items": _ref("Position")}},
            "required": ["positions"],
        },
        "OrderResult": {
            "type": "object",
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["ACCEPTED", "PARTIALLY_FILLED", "REJECTED", "IN_DOUBT"],
                },
                "reason": {"type": "string"},
                "deal_reference": {"type": "string"},
                "deal_id": _NULLABLE_STRING,
                "filled_size": {"type": "number"},
                "outcome_durable": {"type": "boolean"},
            },
            "required": [
                "status",
                "reason",
                "deal_reference",
                "deal_id",
                "filled_size",
                "outcome_durable",
            ],
        },
        "ReconcileReport": {
            "type": "object",
            "properties": {
                "ok": {"type": "boolean"},
                "error": _NULLABLE_STRING,
                "records": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"kind": {"type": "string"}},
                        "required": ["kind"],
                    },
                },
                "deferred": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["ok", "error", "records", "deferred"],
        },
    }


def openapi_document(epics: Iterable[str], *, reads_need_token: bool) -> dict[str, Any]:
    """The contract. `reads_need_token` is the `--allow-remote` service: every endpoint then
    needs the token; otherwise reads and kill-switch activation need none."""
    token = [{"bearer": []}]
    read = {"security": token} if reads_need_token else {"security": []}
    activation = {"security": token} if reads_need_token else {"security": [{}, *token]}
    switch = _json(_ref("SwitchStatus"), "the kill switch; `persisted` says if a restart finds it")

    def post(summary: str, ok: dict, body: str | None, *errors: int, **more: Any) -> dict:
        operation: dict[str, Any] = {
            "summary": summary,
            "security": token,
            "responses": {"200": ok, **_errors(*errors)},
            **more,
        }
        if body is not None:
            operation["requestBody"] = _body(body, required=body == "OrderIntent")
        return {"post": operation}

    def get(summary: str, ok: dict) -> dict:
        return {"get": {"summary": summary, **read, "responses": {"200": ok, **_errors(401)}}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "solat-chaos engine",
            "version": "1",
            "description": "The SOLAT execution core as a service. Mutating calls need "
            "`Authorization: Bearer <token>` (the token is in the data directory's api_token "
            "file), except kill-switch activation from loopback: stopping must never be hard.",
        },
        "paths": {
            "/execution/kill-switch/activate": post(
                "Activate the kill switch; answers once the state is durable",
                switch,
                "SwitchRequest",
                400,
                401,
                422,
                **activation,
            ),
            "/execution/kill-switch/deactivate": post(
                "Deactivate the kill switch", switch, "SwitchRequest", 400, 401, 422
            ),
            "/execution/kill-switch/status": get("The kill switch", switch),
            "/health": get(
                "Health: ages, staleness, pending and in-doubt counts",
                _json(_ref("Health"), "health, computed now"),
            ),
            "/execution/positions": get(
                "The local position book", _json(_ref("Positions"), "open positions")
            ),
            "/execution/orders": post(
                "Submit an order intent",
                _json(_ref("OrderResult"), "the router's answer (REJECTED is an answer too)"),
                "OrderIntent",
                400,
                401,
                422,
            ),
            "/execution/positions/{deal_id}/close": post(
                "Close a position (all of it unless `size` is given)",
                _json(_ref("OrderResult"), "the router's answer"),
                "CloseRequest",
                400,
                401,
                404,
                422,
                parameters=[
                    {
                        "name": "deal_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": DEAL_ID_PATTERN},
                    }
                ],
            ),
            "/execution/reconcile": post(
                "Reconcile with the broker now",
                _json(_ref("ReconcileReport"), "what the reconcile found and repaired"),
                None,
                401,
            ),
            "/openapi.json": get(
                "This document", _json({"type": "object"}, "the OpenAPI document")
            ),
            "/": {
                "get": {
                    "summary": "The health panel",
                    **read,
                    "responses": {
                        "200": {
                            "description": "a page that refreshes itself",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        **_errors(401),
                    },
                }
            },
        },
        "components": {
            "schemas": {**request_schemas(epics), **_response_schemas()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
