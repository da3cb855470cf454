"""The Kustomize manifests: every rendered object valid for Kubernetes, and wired together.

kubernetes-validate checks each built-in object against the Kubernetes 1.30 OpenAPI schema in
strict mode (unknown fields are errors). The ServiceMonitor is a CRD that schema does not
know: it is validated against deploy/k8s/schemas/, a JSON schema of the CRD fields the
manifests use (anything else rejected), and cross-checked against the Service it scrapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recstack.settings import Settings
from recstack.testing.kustomize import render, strategic_merge

kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
K8S_VERSION = "1.30.0"
VARIANTS = ("base", "staging", "production")
SECRET = "recstack-secrets"


@pytest.fixture(scope="module")
def k8s_dir() -> Path:
    return K8S


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every rendered variant: ``base``, ``staging`` and ``production``."""
    return {
        "base": render(K8S / "base"),
        "staging": render(K8S / "overlays" / "staging"),
        "production": render(K8S / "overlays" / "production"),
    }


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_is_valid(rendered, k8s_dir: Path, variant: str) -> None:
    schema = json.loads(
        (k8s_dir / "schemas" / "servicemonitor-monitoring.coreos.com-v1.json").read_text()
    )
    kinds = []
    for obj in rendered[variant]:
        kinds.append(obj["kind"])
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(obj, schema)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert sorted(kinds) == sorted(
        ["ConfigMap", "Deployment", "Deployment", "Deployment", "Service",
         "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"]
    )  # fmt: skip


def test_validation_catches_a_broken_manifest(rendered, k8s_dir: Path) -> None:
    api = dict(by_kind(rendered["base"])[("Deployment", "recstack-api")])
    api["spec"] = {**api["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSION, strict=True)
    monitor = by_kind(rendered["base"])[("ServiceMonitor", "recstack-api")]
    schema = json.loads(
        (k8s_dir / "schemas" / "servicemonitor-monitoring.coreos.com-v1.json").read_text()
    )
    typo = {**monitor, "spec": {**monitor["spec"], "endpoint": monitor["spec"]["endpoints"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema)


@pytest.mark.parametrize("variant", VARIANTS)
def test_objects_are_wired_together(rendered, variant: str) -> None:
    objs = by_kind(rendered[variant])
    api = objs[("Deployment", "recstack-api")]
    pods = {
        name: o["spec"]["template"]["metadata"]["labels"]
        for (kind, name), o in objs.items()
        if kind == "Deployment"
    }
    for (kind, name), o in objs.items():
        if kind == "Deployment":
            assert selects(o["spec"]["selector"]["matchLabels"], pods[name])
    service = objs[("Service", "recstack-api")]
    chosen = [n for n, labels in pods.items() if selects(service["spec"]["selector"], labels)]
    assert chosen == ["recstack-api"]  # the Service reaches API pods only
    pdb = objs[("PodDisruptionBudget", "recstack-api")]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pods["recstack-api"])
    assert not selects(pdb["spec"]["selector"]["matchLabels"], pods["recstack-scheduler"])
    hpa = objs[("HorizontalPodAutoscaler", "recstack-api")]
    assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in objs
    assert hpa["spec"]["minReplicas"] <= api["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    monitor = objs[("ServiceMonitor", "recstack-api")]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (container,) = api["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert service["spec"]["ports"][0]["targetPort"] in named
    assert named["http"] == int(container["args"][container["args"].index("--port") + 1])
    configmaps = {name for kind, name in objs if kind == "ConfigMap"}
    for name, o in objs.items():
        if name[0] != "Deployment":
            continue
        for c in o["spec"]["template"]["spec"]["containers"]:
            refs = {k: v["name"] for ref in c["envFrom"] for k, v in ref.items()}
            assert refs["configMapRef"] in configmaps and refs["secretRef"] == SECRET


@pytest.mark.parametrize("variant", VARIANTS)
def test_commands_and_settings_exist_in_recstack(rendered, variant: str) -> None:
    from recstack.cli.app import app

    runner = CliRunner()
    for obj in rendered[variant]:
        if obj["kind"] == "ConfigMap":
            for key, value in obj["data"].items():
                if key.startswith("RECSTACK_"):
                    field = key.removeprefix("RECSTACK_").lower()
                    assert field in Settings.model_fields, f"{key} is not a recstack setting"
                    Settings.model_validate({field: value})  # and the value parses
        if obj["kind"] != "Deployment":
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert c["args"][0] == "recstack"
            result = runner.invoke(app, [c["args"][1], "--help"])
            assert result.exit_code == 0, result.output
            for option in (a for a in c["args"] if a.startswith("--")):
                assert option in result.output, f"{c['args'][1]} has no option {option}"


def test_overlays_differ_where_they_should(rendered) -> None:
    staging, production = by_kind(rendered["staging"]), by_kind(rendered["production"])
    for objs, namespace, tag in ((staging, "recstack-staging", "main"),
                                 (production, "recstack", "0.1.0")):  # fmt: skip
        assert {o["metadata"]["namespace"] for o in objs.values()} == {namespace}
        for (kind, _), o in objs.items():
            if kind == "Deployment":
                images = {c["image"] for c in o["spec"]["template"]["spec"]["containers"]}
                assert images == {f"ghcr.io/recstack/recstack:{tag}"}
    assert staging[("Deployment", "recstack-api")]["spec"]["replicas"] == 1
    assert staging[("PodDisruptionBudget", "recstack-api")]["spec"] == {
        "maxUnavailable": 1,
        "selector": staging[("PodDisruptionBudget", "recstack-api")]["spec"]["selector"],
    }
    prod_api = production[("Deployment", "recstack-api")]["spec"]
    assert prod_api["replicas"] == 4
    assert production[("PodDisruptionBudget", "recstack-api")]["spec"]["minAvailable"] == 3
    assert production[("HorizontalPodAutoscaler", "recstack-api")]["spec"]["minReplicas"] == 4
    (container,) = prod_api["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # kept from base
    assert [m["name"] for m in container["volumeMounts"]] == ["data", "prom", "tmp"]
    assert production[("Deployment", "recstack-consumer")]["spec"]["replicas"] == 3


def test_strategic_merge_rules() -> None:
    base = {
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
                {"name": "b", "image": "y", "args": ["1", "2"]},
            ],
            "minAvailable": 1,
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "b", "args": ["3"]},
                {"name": "c", "image": "z"},
                {"name": "a", "env": [{"name": "J", "value": "2"}]},
            ],
            "minAvailable": None,
            "maxUnavailable": 1,
        }
    }
    merged = strategic_merge(base, patch)
    assert merged["spec"]["containers"] == [
        {
            "name": "a",
            "image": "x",
            "env": [{"name": "K", "value": "1"}, {"name": "J", "value": "2"}],
        },
        {"name": "b", "image": "y", "args": ["3"]},  # plain lists are replaced
        {"name": "c", "image": "z"},
    ]
    assert merged["spec"] == {**merged["spec"], "maxUnavailable": 1}
    assert "minAvailable" not in merged["spec"]
    with pytest.raises(NotImplementedError):
        strategic_merge(base, {"spec": {"$patch": "replace"}})


def test_renderer_refuses_fields_it_does_not_implement(tmp_path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(NotImplementedError, match="commonLabels"):
        render(tmp_path)
