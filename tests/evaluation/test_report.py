"""Reports: JSON, Markdown, self-contained HTML and PNG charts from one evaluation."""

from __future__ import annotations

import json

import pytest

from recstack.evaluation.protocol import evaluate_models
from recstack.evaluation.report import markdown_table, write_report
from recstack.testing.data import planted_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    data = planted_dataset(n_users=80, n_items=50, per_user=10)
    return evaluate_models(data, ["popularity", "itemknn"], k=5, ks=(1, 5, 10))


@pytest.fixture(scope="module")
def paths(result, tmp_path_factory):
    return write_report(result, tmp_path_factory.mktemp("report") / "out")


def test_write_report_writes_every_file(paths, result):
    assert set(paths) == {
        "json",
        "markdown",
        "html",
        "metrics_by_model",
        "metrics_vs_k",
        "popularity_bias",
    }
    for key in ("metrics_by_model", "metrics_vs_k", "popularity_bias"):
        assert paths[key].read_bytes().startswith(PNG_MAGIC)
    payload = json.loads(paths["json"].read_text())
    assert [m["name"] for m in payload["models"]] == ["popularity", "itemknn"]
    assert payload["users_evaluated"] == result.users_evaluated


def test_html_is_self_contained(paths, result):
    page = paths["html"].read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "http://" not in page and "https://" not in page
    assert "<td>itemknn</td>" in page
    assert f"{result.users_evaluated:,} users evaluated" in page


def test_markdown_table_has_one_row_per_model(result):
    lines = markdown_table(result).splitlines()
    assert lines[0].startswith("| model | NDCG@5 | P@5 | R@5 | MAP@5 | MAP@5 (all rel.) |")
    assert lines[0].endswith("| coverage | diversity | novelty | train s |")
    assert len(lines) == 2 + 2
    knn = result.model("itemknn").metrics
    assert lines[3].startswith(f"| itemknn | {knn['ndcg']:.4f} | {knn['precision']:.4f} |")
    assert result.to_markdown() == markdown_table(result)
