"""Evaluation reports: results.json, a Markdown table, a self-contained HTML page and PNGs.

The table itself (``table_rows``, ``markdown_table``) is defined with the results, in
``evaluation.results``, and re-exported here.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from recstack.evaluation.plots import write_plots
from recstack.evaluation.results import EvaluationResult, markdown_table, table_rows


def summary_line(result: EvaluationResult) -> str:
    """One sentence on what was evaluated: split, sizes, users scored and skipped."""
    data = result.dataset
    relevance = (
        "every test interaction relevant"
        if result.min_rating is None
        else f"test interactions weighing at least {result.min_rating} relevant"
    )
    keys = f", {result.split_keys} keys" if result.protocol == "stratified" else ""
    return (
        f"{result.protocol} split (ratio {result.ratio}, seed {result.seed}{keys}) of "
        f"{data.get('interactions', 0):,} interactions ({data.get('users', 0):,} users, "
        f"{data.get('items', 0):,} items): {result.train_interactions:,} train / "
        f"{result.test_interactions:,} test; {result.users_evaluated:,} users evaluated, "
        f"{result.users_skipped:,} skipped (no relevant test item); seen items removed, "
        f"{relevance}; diversity from {result.diversity_source}."
    )


def markdown_report(result: EvaluationResult) -> str:
    """results.md: a title, the summary line and the table."""
    return (
        f"# Evaluation report ({result.created_at})\n\n{summary_line(result)}\n\n"
        f"{markdown_table(result)}\n"
    )


def html_report(result: EvaluationResult, plots: dict[str, Path]) -> str:
    """A single HTML page with the table and the charts embedded as base64 PNGs."""
    header, rows = table_rows(result)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(Path(path).read_bytes()).decode()}"/>'
        f"<figcaption>{html.escape(name.replace('_', ' '))}</figcaption></figure>"
        for name, path in plots.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>recstack evaluation</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th:first-child,td:first-child{text-align:left}"
        "img{max-width:100%}figure{margin:1.5em 0}</style></head><body>"
        f"<h1>Evaluation report</h1><p>{html.escape(result.created_at)}</p>"
        f"<p>{html.escape(summary_line(result))}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"{images}</body></html>"
    )


def write_report(result: EvaluationResult, out_dir: Path | str) -> dict[str, Path]:
    """Write results.json, results.md, report.html and the PNG charts under ``out_dir``.

    Returns ``{"json", "markdown", "html", <chart names>: path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(result, out)
    paths = {
        "json": out / "results.json",
        "markdown": out / "results.md",
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2, default=str))
    paths["markdown"].write_text(markdown_report(result))
    paths["html"].write_text(html_report(result, plots))
    return {**paths, **plots}
