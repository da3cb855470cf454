"""Model cards and decision tags on registered versions.

Every registered version carries a Markdown model card (``model_card.md`` in its run's
artifacts): the data it saw (window, fingerprint, sizes), its parameters, its offline metrics
and the split they were measured on, popularity bias and coverage, and the gate decision that
promoted or refused it. The card is rebuilt from what MLflow holds, so it can be regenerated at
any time (after a gate decision, for instance) and read back by the dashboard.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recstack.errors import NotFoundError
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings

CARD_ARTIFACT = "model_card.md"
DECISION_TAG = "recstack.gate.decision"


def run_tags(registry: ModelRegistry, info: VersionInfo) -> dict[str, str]:
    """The tags of the run that produced ``info`` (empty when it has no run)."""
    if not info.run_id:
        return {}
    return dict(registry.client.get_run(info.run_id).data.tags)


def tag_version(registry: ModelRegistry, name: str, version: int, tags: Mapping[str, Any]) -> None:
    """Set tags on a registered version and on its run (values as text; dicts as JSON)."""
    info = registry.get_version(name, version)
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        text = text[:5000]
        registry.client.set_model_version_tag(name, str(int(version)), key, text)
        if info.run_id:
            registry.client.set_tag(info.run_id, key, text)


def _when(seconds: str | None) -> str:
    if seconds in (None, ""):
        return "not recorded"
    stamp = datetime.fromtimestamp(int(float(seconds)), UTC)
    return f"{stamp.isoformat(timespec='seconds')} ({int(float(seconds))})"


def model_card(
    info: VersionInfo, tags: Mapping[str, str], decision: Mapping[str, Any] | None = None
) -> str:
    """The Markdown card of one version, from its info, its run tags and an optional decision.

    >>> info = VersionInfo("recstack", 3, "r1", ["champion"], {"ndcg_at_10": 0.25}, "2026-01-01",
    ...                    model="als", params={"factors": "8"})
    >>> card = model_card(info, {"recstack.data.fingerprint": "abc", "recstack.eval.protocol":
    ...                          "temporal"}, {"promoted": True, "reason": "promoted: better"})
    >>> "| ndcg_at_10 | 0.2500 |" in card and "fingerprint `abc`" in card
    True
    >>> card.splitlines()[0]
    '# Model card: recstack version 3 (als)'
    """
    data = {k.removeprefix("recstack.data."): v for k, v in tags.items() if "recstack.data." in k}
    lines = [
        f"# Model card: {info.name} version {info.version} ({info.model or 'unknown'})",
        "",
        f"- Registered: {info.created_at}",
        f"- Aliases: {', '.join(info.aliases) or 'none'}",
        f"- Run: `{info.run_id}`",
        "",
        "## Data",
        "",
        f"- Data fingerprint `{tags.get('recstack.data_fingerprint', data.get('fingerprint', ''))}`",
        f"- Window: {_when(data.get('window_start'))} to {_when(data.get('window_end'))}",
        f"- Users {data.get('users', '?')}, items {data.get('items', '?')}, "
        f"interactions {data.get('interactions', '?')}",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(info.params.items())],
        "",
        "## Offline metrics",
        "",
        f"Measured on: {_split(tags)}.",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in sorted(info.metrics.items())],
        "",
        "## Popularity bias and coverage",
        "",
        *_bias_lines(info.metrics),
        "",
        "## Gate decision",
        "",
        *_decision_lines(decision, tags),
        "",
    ]
    return "\n".join(lines)


def _split(tags: Mapping[str, str]) -> str:
    if tags.get("recstack.gate.split"):
        return tags["recstack.gate.split"]
    protocol = tags.get("recstack.eval.protocol")
    if not protocol:
        return "not evaluated offline"
    users = tags.get("recstack.eval.users_evaluated", "?")
    return f"a {protocol} holdout split (75/25, seed 42), {users} users scored"


def _bias_lines(metrics: Mapping[str, float]) -> list[str]:
    found = [
        f"- {label}: {metrics[key]:.4f}"
        for key in sorted(metrics)
        for prefix, label in (
            ("coverage", "Catalogue coverage"),
            ("arp", "Average recommended popularity"),
            ("novelty", "Novelty"),
        )
        if key.startswith(prefix)
    ]
    return found or ["- not measured (the version was registered without an offline evaluation)"]


def _decision_lines(decision: Mapping[str, Any] | None, tags: Mapping[str, str]) -> list[str]:
    if decision is None and tags.get(DECISION_TAG):
        decision = json.loads(tags[DECISION_TAG])
    if not decision:
        return ["- No gate decision: registered directly (recstack train or the admin API)."]
    lines = [
        f"- {'Promoted' if decision.get('promoted') else 'Refused'}: {decision.get('reason', '')}",
    ]
    if decision.get("id"):
        lines.append(f"- Decision record `{decision['id']}`")
    if decision.get("drift_report_id"):
        lines.append(f"- Drift report `{decision['drift_report_id']}`")
    for check in decision.get("checks") or []:
        lines.append(
            f"- {check['metric']}: champion {check['champion']:.4f}, challenger "
            f"{check['challenger']:.4f}, limit {check['limit']:.4f} "
            f"({'pass' if check['passed'] else 'FAIL'})"
        )
    return lines


def write_model_card(
    registry: ModelRegistry,
    name: str,
    version: int,
    decision: Mapping[str, Any] | None = None,
) -> str:
    """Build the card of a version and log it as the run's ``model_card.md``; returns it."""
    info = registry.get_version(name, version)
    card = model_card(info, run_tags(registry, info), decision)
    if info.run_id:
        registry.client.log_text(info.run_id, card, CARD_ARTIFACT)
    return card


def read_model_card(
    settings: Settings,
    name: str | None = None,
    version: int | None = None,
    alias: str = "champion",
) -> str:
    """The Markdown card of a version (or of the version ``alias`` points at).

    A version registered before cards existed gets one built on the spot (not stored).
    """
    registry = ModelRegistry(settings)
    name = name or settings.model_name
    if not registry.exists():
        raise NotFoundError(f"no registered model named {name!r} (nothing registered yet)")
    info = (
        registry.get_version(name, version)
        if version is not None
        else registry.resolve(name, alias)
    )
    if not info.run_id:
        raise NotFoundError(f"model {name!r} version {info.version} has no run to hold a card")
    with tempfile.TemporaryDirectory(prefix="recstack-card-") as tmp:
        try:
            path = registry.client.download_artifacts(info.run_id, CARD_ARTIFACT, tmp)
        except Exception:  # noqa: BLE001 - no card logged yet: build it from what is recorded
            return model_card(info, run_tags(registry, info))
        return Path(path).read_text(encoding="utf-8")
