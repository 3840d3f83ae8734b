"""Render the report: the summary through a Jinja2 template packaged with this module, the
charts inline, the styles inline; one HTML file that opens from disk and loads nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

import solat_chaos
from solat_chaos.model.run_record import RunRecord
from solat_chaos.report.charts import cell_colour, history_svg
from solat_chaos.report.summary import Summary, summarize

_ENVIRONMENT = Environment(
    loader=PackageLoader("solat_chaos.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(summary: Summary) -> str:
    most = max(summary.coverage.steps.values(), default=1)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        summary=summary,
        history_chart=Markup(history_svg(summary.history)) if summary.history else None,
        colour=lambda steps: cell_colour(steps, most),
        version=solat_chaos.__version__,
        written_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )


def write_report(
    path: str | os.PathLike[str], covered: Sequence[RunRecord], history: Sequence[RunRecord]
) -> Summary:
    """Write the report over the `covered` runs with `history` (oldest first) as the trend;
    what it says."""
    summary = summarize(covered, history)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(summary), encoding="utf-8")
    return summary


def newest(records: Sequence[RunRecord], count: int) -> list[RunRecord]:
    return list(records[-count:]) if count > 0 else []
