"""The report's pictures, drawn with matplotlib into inline SVG (nothing to load at view time):
the history of runs, and the colour scale of the coverage heatmap.

matplotlib's object API is used (a `Figure`, no pyplot), so drawing touches no global
backend state; text stays text in the SVG (`svg.fonttype: none`), so it is searchable and
small; and a fixed hash salt makes the same records give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure

from solat_chaos.report.summary import HistoryPoint

_SVG = {"svg.fonttype": "none", "svg.hashsalt": "solat-chaos", "font.size": 9}
_CELLS = matplotlib.colormaps["YlGn"]


def history_svg(points: Sequence[HistoryPoint]) -> str:
    """Steps, failures and coverage per run, oldest on the left, as an <svg> element."""
    with matplotlib.rc_context(_SVG):
        figure = Figure(figsize=(9, 4.2), layout="constrained")
        steps, failures, coverage = figure.subplots(3, 1, sharex=True)
        x = range(len(points))
        steps.plot(x, [p.steps for p in points], marker="o", color="#2b6cb0")
        steps.set_ylabel("steps")
        failures.bar(x, [p.failures for p in points], color="#c53030")
        failures.set_ylabel("failures")
        failures.yaxis.get_major_locator().set_params(integer=True)
        coverage.plot(x, [100 * p.coverage for p in points], marker="o", color="#2f855a")
        coverage.set_ylabel("coverage %")
        coverage.set_ylim(0, 100)
        labels = [p.created_at[:16].replace("T", " ") for p in points]
        every = max(1, len(points) // 10)
        coverage.set_xticks(list(x)[::every], labels[::every], rotation=30, ha="right")
        for axes in (steps, failures, coverage):
            axes.grid(axis="y", alpha=0.3)
        return _svg_of(figure)


def cell_colour(steps: int, most: int) -> str:
    """The heatmap colour of a cell that ran `steps` times (at least 1; `most` in the busiest
    cell), on a log scale: a rule that ran a handful of times under a fault stays visible."""
    norm = LogNorm(vmin=1, vmax=max(most, 2))
    return to_hex(_CELLS(0.15 + 0.85 * float(norm(steps))))


def _svg_of(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    # Inline in HTML the XML prologue and doctype are not wanted.
    return text[text.index("<svg") :]
