"""The report's charts: Vega-Lite specs from altair, rendered to SVG text by vl-convert.

Why these two: altair writes a declarative Vega-Lite spec from a DataFrame (stacking, scales,
legends and axes are the library's job, not hand-placed rectangles), and vl-convert renders it
to SVG in-process with no browser and no network, so the page carries its charts inline and
opens anywhere. Labels are strings the page already formats (dates as YYYY-MM-DD, hours as
ISO-8601 UTC), so no chart depends on the time zone of the machine that renders it; the same
DataFrames give the same SVG bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import vl_convert

WIDTH = 720  # plot area of the full-width charts; the page's column is ~940 px with the legend
STRIP_WIDTH = 880
RANKED_WIDTH = 280  # half a column, leaving room for the longest labels (e-mail addresses)
# The font vl-convert measures labels with, then its metric twins: labels fit the way they were laid out.
FONT = "'Liberation Sans', Arial, Helvetica, sans-serif"
# Worst last, and colours a reader need not look up: green is done, red is missing.
COVERAGE_COLOURS = {
    "sealed": "#2e7d32",
    "provisional": "#9ccc65",
    "pending": "#b0bec5",
    "mismatch": "#ef6c00",
    "missing": "#c62828",
}
OUTCOME_COLOURS = {"Completed": "#2e7d32", "Failed": "#c62828", "Stopped": "#8d6e63", "Preempted": "#ef6c00"}
FAILURE_COLOURS = {"4xx": "#ef6c00", "5xx": "#c62828", "none": "#78909c"}
SIGN_IN_COLOURS = {"succeeded": "#1565c0", "failed": "#c62828"}


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as one <svg> element (no XML prolog), ready to be placed in HTML."""
    spec = (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=12)
        .configure_legend(labelFontSize=12)
        .configure_title(fontSize=14)
        .to_dict()
    )
    text = vl_convert.vegalite_to_svg(spec)
    return text[text.index("<svg") :] if "<svg" in text else text


def _labels(index: pd.Index) -> list[str]:
    return [pd.Timestamp(t).strftime("%Y-%m-%d") for t in index]


def _long(wide: pd.DataFrame, series: str, value: str) -> pd.DataFrame:
    frame = wide.copy()
    frame.index = pd.Index(_labels(wide.index), name="period")
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index().melt(id_vars="period", var_name=series, value_name=value)


def stacked_bars(
    wide: pd.DataFrame,
    *,
    series: str,
    value: str,
    title: str,
    y_title: str,
    colours: dict[str, str] | None = None,
    height: int = 240,
) -> alt.Chart:
    """One bar per period (x), stacked by the columns of ``wide`` in their order."""
    long = _long(wide, series, value)
    order: Sequence[str] = [str(c) for c in wide.columns]
    colour_scale = (
        alt.Scale(domain=list(colours), range=list(colours.values()))
        if colours
        else alt.Scale(scheme="tableau20")
    )
    return (
        alt.Chart(long, title=title)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title=None, sort=_labels(wide.index), axis=alt.Axis(labelAngle=-45)),
            y=alt.Y(f"{value}:Q", title=y_title, stack="zero"),
            color=alt.Color(
                f"{series}:N", sort=list(order), scale=colour_scale, legend=alt.Legend(title=None)
            ),
            order=alt.Order("stack_order:Q"),
        )
        .transform_calculate(stack_order=_order_expression(series, order))
        .properties(width=WIDTH, height=height)
    )


def _order_expression(field: str, order: Sequence[str]) -> str:
    """A Vega expression giving each series its position in ``order`` (stack bottom-up in legend order)."""
    names = ", ".join(_js_string(name) for name in order)
    return f"indexof([{names}], datum[{_js_string(field)}])"


def _js_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def ranked_bars(top: pd.DataFrame, *, title: str, height_per_bar: int = 22) -> alt.Chart:
    """Horizontal bars of GPU-hours, largest first (``top`` from warehouse.analytics.rank_consumers)."""
    frame = pd.DataFrame({"name": top["name"].astype(str), "gpu_hours": top["gpu_hours"].astype(float)})
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color="#1565c0")
        .encode(
            x=alt.X("gpu_hours:Q", title="GPU-hours"),
            y=alt.Y("name:N", title=None, sort=list(frame["name"])),
        )
        .properties(width=RANKED_WIDTH, height=max(height_per_bar * len(frame), 40))
    )


def coverage_strip(hours: pd.DataFrame) -> alt.Chart:
    """One thin cell per UTC hour coloured by its coverage status, across the whole period."""
    frame = pd.DataFrame(
        {
            "start": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in hours["period_start"]],
            "end": [
                (t + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ") for t in hours["period_start"]
            ],
            "status": hours["status"].astype(str),
        }
    )
    return (
        alt.Chart(frame, title="Audit log coverage, hour by hour (UTC)")
        .mark_rect()
        .encode(
            x=alt.X(
                "start:T",
                title=None,
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%Y-%m-%d", tickCount="day"),
            ),
            x2="end:T",
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(COVERAGE_COLOURS), range=list(COVERAGE_COLOURS.values())),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
        )
        .properties(width=STRIP_WIDTH, height=28)
    )
