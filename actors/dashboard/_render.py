"""The dashboard's HTML: Jinja templates shipped in the package, with a few filters
(durations, ages, a throughput chart as inline SVG)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

__all__ = ["FRAGMENTS", "render", "sparkline"]

HERE = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

#: The parts of a page that live updates replace, by element id: the template of each.
FRAGMENTS = {
    "nodes": "_nodes.html",
    "mailboxes": "_mailboxes.html",
    "letters": "_letters.html",
    "banner": "_banner.html",
}


def duration(seconds: float | None) -> str:
    """``93.0`` -> ``"1m 33s"``; None -> ``"?"``."""
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def sparkline(rates: Sequence[float | None], width: int = 150, height: int = 28) -> Markup:
    """Messages per second over time as a small inline SVG polyline (no samples yet:
    an empty frame), titled with the latest and the highest rate."""
    known = [r for r in rates if r is not None]
    peak = max(known, default=0.0)
    top = peak or 1.0
    step = width / max(1, len(rates) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (rate / top) * (height - 4):.1f}"
        for i, rate in enumerate(rates)
        if rate is not None
    )
    latest = known[-1] if known else 0.0
    title = f"{latest:.1f} msg/s now, peak {peak:.1f} msg/s (last {len(rates) * 10 // 60} min)"
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{title}"><title>{title}</title>'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/>'
        "</svg>"
    )


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _path(address: str) -> str:
    return quote(address, safe=":")


_ENV.filters.update(duration=duration, sparkline=sparkline, when=_when, urlpath=_path)


def render(template: str, **context: Any) -> str:
    """The template ``template`` rendered with ``context``.

    Raises:
        jinja2.TemplateError: the template is missing or uses a name not given.
    """
    return _ENV.get_template(template).render(**context)
