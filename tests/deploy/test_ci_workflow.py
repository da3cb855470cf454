"""The GitHub Actions workflow: parsed, and checked against the project it builds.

The workflow cannot run here; what can be checked is that it runs what the project says it
should (the Makefile's lint commands, the full test suite with no marker excluded), that its
PostgreSQL and Redis services are the ones the test URLs point at, and that the image build
uses the Dockerfile that exists.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def runs(job: dict[str, Any]) -> list[str]:
    return [line.strip() for s in job["steps"] for line in s.get("run", "").splitlines() if line]


def test_triggers_and_jobs(workflow) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}
    assert set(workflow["jobs"]) == {"lint", "test", "image"}
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_lint_runs_what_make_lint_runs(workflow) -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    wanted = [line.strip().replace("$(VENV)/bin/", "") for line in recipe]
    assert wanted and set(wanted) <= set(runs(workflow["jobs"]["lint"]))


def test_tests_run_against_the_services(workflow) -> None:
    job = workflow["jobs"]["test"]
    services = job["services"]
    pg, redis = services["postgres"], services["redis"]
    assert pg["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust" and "health-cmd" in pg["options"]
    assert "health-cmd" in redis["options"]
    db = urlparse(job["env"]["RECSTACK_TEST_DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg" and db.username == "postgres"
    assert f"{db.port}:5432" in pg["ports"] and db.path == f"/{pg['env']['POSTGRES_DB']}"
    rd = urlparse(job["env"]["RECSTACK_TEST_REDIS_URL"])
    assert f"{rd.port}:6379" in redis["ports"]
    pytest_runs = [r for r in runs(job) if "pytest" in r]
    assert len(pytest_runs) == 1
    args = pytest_runs[0].split("pytest", 1)[1].split()
    assert "-m" not in args and "-k" not in args  # no marker or test deselected
    make_test = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert f"pytest {' '.join(args)}" in make_test  # the README's `make test` command


def test_installs_only_extras_that_exist(workflow) -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    for job in workflow["jobs"].values():
        for line in runs(job):
            for group in re.findall(r"'\.\[([\w,]+)\]'", line):
                assert set(group.split(",")) <= extras, line


def test_image_is_built_from_the_dockerfile(workflow) -> None:
    (build,) = [s for s in workflow["jobs"]["image"]["steps"] if "build-push" in s.get("uses", "")]
    dockerfile = ROOT / build["with"]["file"]
    assert dockerfile.is_file() and build["with"]["push"] is False
    context = ROOT / build["with"]["context"]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), f"{dockerfile.name} copies missing {source}"
