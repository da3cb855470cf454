"""A drift report: the signals between two windows and the dataset verdict, as JSON and HTML.

The signals come from ``signals.drift_signals``; the report carries them with the windows
compared and renders as a small self-contained HTML page.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from recstack.monitoring.signals import Signal


@dataclass
class DriftReport:
    """The signals between a reference and a current window, and the dataset verdict."""

    id: str
    created_at: str
    drifted: bool
    share: float
    signals: list[Signal]
    reference: dict[str, Any]
    current: dict[str, Any]
    config: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "drifted": self.drifted,
            "share": self.share,
            "signals": [s.to_dict() for s in self.signals],
            "created_at": self.created_at,
            "reference": self.reference,
            "current": self.current,
            "model": self.model,
            "config": self.config,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        return cls(
            id=data["id"],
            created_at=data["created_at"],
            drifted=bool(data["drifted"]),
            share=float(data["share"]),
            signals=[Signal(**s) for s in data["signals"]],
            reference=dict(data.get("reference") or {}),
            current=dict(data.get("current") or {}),
            config=dict(data.get("config") or {}),
            model=dict(data.get("model") or {}),
            skipped=list(data.get("skipped") or []),
        )

    def to_html(self) -> str:
        """A standalone page: the verdict, the windows, one row per signal."""
        verdict = "DRIFT" if self.drifted else "no drift"
        rows = "".join(
            "<tr class='{cls}'><td>{name}</td><td>{method}</td><td>{value}</td><td>{op} {thr}</td>"
            "<td>{verdict}</td><td>{ref}</td><td>{cur}</td></tr>".format(
                cls="drift" if s.drifted else "ok",
                name=html.escape(s.name),
                method=html.escape(s.method),
                value=_fmt(s.value),
                op="&le;" if s.kind == "p_value" else "&ge;",
                thr=_fmt(s.threshold),
                verdict="drift" if s.drifted else "ok",
                ref=s.reference_rows,
                cur=s.current_rows,
            )
            for s in self.signals
        )
        skipped = "".join(f"<li>{html.escape(s)}</li>" for s in self.skipped)
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>recstack drift report {html.escape(self.id)}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px}tr.drift{background:#fdd}"
            "</style></head><body>"
            f"<h1>Drift report {html.escape(self.id)}</h1>"
            f"<p><b>{verdict}</b>: {self.share:.0%} of {len(self.signals)} signals drifted "
            f"(dataset drift at {self.config.get('share', 0.5):.0%}). Created {self.created_at}.</p>"
            f"<p>Reference: {html.escape(_window(self.reference))}<br>"
            f"Current: {html.escape(_window(self.current))}</p>"
            "<table><tr><th>signal</th><th>method</th><th>value</th><th>drift when</th>"
            f"<th>verdict</th><th>reference rows</th><th>current rows</th></tr>{rows}</table>"
            + (f"<h2>Skipped</h2><ul>{skipped}</ul>" if skipped else "")
            + "</body></html>"
        )


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def _window(window: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in window.items())
