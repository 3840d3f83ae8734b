"""Broker adapters behind the engine's `Broker` port.

- `sim`: `SimBroker`, an in-memory IG-like broker. It is the ground truth in every test and
  carries the small fault seams (partial fills, injected errors, held requests, stale lists,
  duplicate deal ids) that the chaos layer drives.
- `ig_http`: the same SimBroker served over HTTP in IG's REST dialect (Starlette app), in-process
  through an httpx transport or a respx router, or on a loopback port through uvicorn.
- `ig_rest`: `IGRestBroker`, the engine's adapter for IG's REST API over httpx.
- `harness`: the SimBroker seen as the `Broker` port both directly and through
  IGRestBroker → HTTP → SimBroker, so one contract suite can run against both.
"""
