"""The health panel in a real browser: headless Chromium renders `GET /` of a served engine
and the page must show what `/health` says: trading state, kill switch, every age with its
stale flag, pending and in-doubt counts, open positions. Skips where no Chromium is found.

The engine runs on a SimClock, so the ages the page shows and the ones `/health` answers
afterwards are the same numbers."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from solat_chaos.api.app import create_app
from solat_chaos.broker.harness import ig_rest_view
from solat_chaos.broker.ig_http import LoopbackServer
from solat_chaos.broker.sim import SimBroker
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.filesystem import OsFileSystem
from tests.browser import chromium, dump_dom, screenshot

TOKEN = "panel-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Element | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.walk()

    def by_id(self, element_id: str) -> Element:
        return next(e for e in self.walk() if e.attrs.get("id") == element_id)

    def rows(self) -> list[Element]:
        return [e for e in self.walk() if e.tag == "tr"]

    def cells(self) -> list[str]:
        return [e.text for e in self.walk() if e.tag == "td"]


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self._stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._stack[-1].children.append(element)
        if tag not in VOID:
            self._stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._stack) - 1, 0, -1):
            if self._stack[depth].tag == tag:
                del self._stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].children.append(data)


def parse(dom: str) -> Element:
    parser = _DomParser()
    parser.feed(dom)
    return parser.root


@pytest.fixture
def served_engine(tmp_path) -> Iterator[tuple[str, SimClock]]:
    """An engine with one open position, served over HTTP on loopback; its SimClock."""
    chromium()  # skip before serving anything when there is no browser
    clock = SimClock()
    broker = ig_rest_view(SimBroker())
    engine = Engine.open(str(tmp_path), broker, fs=OsFileSystem(), clock=clock)
    with LoopbackServer(create_app(engine, TOKEN, tick_interval=None)) as server:
        yield server.base_url, clock


def test_the_panel_shows_what_health_says(served_engine, tmp_path) -> None:
    url, clock = served_engine
    assert httpx.post(f"{url}/execution/reconcile", headers=AUTH).json()["ok"]
    order = {"epic": "CS.D.EURUSD.TODAY.IP", "direction": "BUY", "size": 1.5}
    opened = httpx.post(f"{url}/execution/orders", json=order, headers=AUTH).json()
    assert httpx.post(f"{url}/execution/kill-switch/activate").json()["persisted"]
    clock.advance(45.0)  # past the broker's threshold (30 s), within the balance's (60 s)

    page = parse(dump_dom(f"{url}/"))
    health = httpx.get(f"{url}/health").json()

    assert page.by_id("trading-state").text == health["trading_state"]
    assert page.by_id("kill-switch").text == ("ACTIVE" if health["kill_switch_active"] else "off")
    assert page.by_id("pending").text == str(health["outcomes_pending"])
    assert page.by_id("in-doubt").text == str(health["in_doubt"])
    assert page.by_id("status").text == health["status"]
    ages = {row.attrs["data-age"]: row for row in page.by_id("ages").rows()}
    assert set(ages) == set(health["ages"])
    for name, age in health["ages"].items():
        stale = health["stale"][name]
        assert ages[name].cells() == [name, f"{age:.1f} s", "STALE" if stale else "fresh"]
        assert ("stale" in ages[name].attrs.get("class", "").split()) == stale
    assert health["stale"] == {**health["stale"], "broker": True, "balance": False}
    assert [r.cells() for r in page.by_id("positions").rows()] == [
        [opened["deal_id"], order["epic"], order["direction"], "1.5"]
    ]
    assert [li.text for li in page.by_id("reasons").walk() if li.tag == "li"] == health["reasons"]

    picture = screenshot(f"{url}/", tmp_path / "panel.png")
    assert picture.read_bytes().startswith(b"\x89PNG")
