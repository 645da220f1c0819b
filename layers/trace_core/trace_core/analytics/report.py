"""An HTML report of analytics results: one self-contained page, charts embedded, exact tables.

``write_report(results, dir)`` writes ``dir/index.html`` plus one PNG per result
(the PNGs are also embedded in the page, so the HTML file alone is the report).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from pathlib import Path

from trace_core.analytics import plots, results

# Long tables (every block of a supply series) are cut in the page; the JSON output has them whole.
MAX_TABLE_ROWS = 60

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
td.num { text-align: right; font-family: ui-monospace, monospace; }
td.addr { font-family: ui-monospace, monospace; }
img { max-width: 100%; border: 1px solid #eee; }
.meta { color: #666; font-size: 0.9rem; }
"""


def _cell(column: results.Column, value: object) -> str:
    shown = results.json_value(column.kind, value)
    text = "" if shown is None else str(shown)
    css = {"amount": "num", "ratio": "num", "integer": "num", "block": "num", "address": "addr"}.get(column.kind, "")
    return f'<td class="{css}">{html.escape(text)}</td>'


def _table(table: results.Table) -> str:
    head = "".join(
        f'<th title="{html.escape(c.description)}">{html.escape(c.name)}</th>' for c in table.columns
    )
    rows = table.rows[:MAX_TABLE_ROWS]
    body = "".join("<tr>" + "".join(_cell(c, v) for c, v in zip(table.columns, row)) + "</tr>" for row in rows)
    more = (f'<p class="meta">{len(table.rows) - MAX_TABLE_ROWS} more rows not shown '
            "(run with --format json for all)</p>") if len(table.rows) > MAX_TABLE_ROWS else ""
    return (f"<h3>{html.escape(table.title)}</h3><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{more}")


def _section(result: results.AnalyticsResult, png: Path) -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    params = ", ".join(f"{k}={v}" for k, v in result.params.items() if v is not None)
    parts = [
        f'<h2 id="{html.escape(result.name)}">{html.escape(result.title)}</h2>',
        (f'<p class="meta">{html.escape(result.name)}: blocks {result.from_block} to {result.to_block - 1} '
        f"(window [{result.from_block}, {result.to_block})); parameters: {html.escape(params)}</p>"),
        f'<img alt="{html.escape(result.title)}" src="data:image/png;base64,{image}">',
    ]
    if result.summary is not None:
        parts.append(_table(result.summary))
    parts.extend(_table(table) for table in result.tables.values())
    return "\n".join(parts)


def write_report(report_results: Sequence[results.AnalyticsResult], directory: Path) -> Path:
    """Write ``directory/index.html`` (and a PNG per result) for ``report_results``; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    sections = []
    for result in report_results:
        png = plots.plot(result, directory / f"{result.name}.png")
        sections.append(_section(result, png))
    toc = "".join(f'<li><a href="#{html.escape(r.name)}">{html.escape(r.title)}</a></li>' for r in report_results)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Trace analytics</title>"
        f"<style>{_STYLE}</style></head><body><h1>Trace analytics</h1>"
        f'<p class="meta">Generated {generated}. Amounts are exact integers in the token\'s base units (wei for '
        "stake); ratios are exact fractions shown to 18 decimal places.</p>"
        f"<ul>{toc}</ul>" + "\n".join(sections) + "</body></html>\n"
    )
    target = directory / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
