"""Render the Kustomize overlays in deploy/k8s without the kustomize binary (for their tests).

``render(directory)`` implements exactly the Kustomization fields the manifests use —
``resources`` (files and directories), ``patches`` given by ``path`` (strategic-merge
patches, matched to their object by kind and name), ``images`` (``newName``/``newTag``) and
``namespace`` — and raises ``NotImplementedError`` for any other field, so a manifest change
that this renderer would get wrong fails loudly instead of being validated half-rendered.

The strategic merge follows Kubernetes' rules for the fields the patches touch: maps merge
key by key, a ``null`` value deletes the key, lists of containers / env / volumes merge by
``name``, volume mounts by ``mountPath``, ports by ``containerPort`` (``port`` in a Service),
and every other list is replaced. ``$patch`` directives are not implemented (an error).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "patches", "images", "namespace"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _merge_key(field: str | None, items: list[Any]) -> str | None:
    if field == "ports":
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field or "")


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    """``patch`` merged onto ``base`` (see the module docstring for the rules).

    >>> strategic_merge({"a": 1, "b": {"c": 2}, "l": [1]}, {"a": None, "b": {"d": 3}, "l": [2]})
    {'b': {'c': 2, 'd': 3}, 'l': [2]}
    >>> strategic_merge({"env": [{"name": "A", "value": "1"}]},
    ...                 {"env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]})
    {'env': [{'name': 'A', 'value': '2'}, {'name': 'B', 'value': '3'}]}
    """
    if isinstance(patch, dict):
        if any(k.startswith("$") for k in patch):
            raise NotImplementedError(f"patch directive in {sorted(patch)}")
        out = copy.deepcopy(base) if isinstance(base, dict) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(patch, list) and isinstance(base, list):
        key = _merge_key(field, base + patch)
        if key is not None and all(isinstance(i, dict) and key in i for i in base + patch):
            out = copy.deepcopy(base)
            for item in patch:
                at = next((n for n, old in enumerate(out) if old[key] == item[key]), None)
                if at is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[at] = strategic_merge(out[at], item, None)
            return out
    return copy.deepcopy(patch)


def _pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def _set_image(container: dict[str, Any], rule: dict[str, Any]) -> None:
    image = container["image"]
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    if name != rule["name"]:
        return
    container["image"] = f"{rule.get('newName', name)}:{rule.get('newTag', tag or 'latest')}"


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build directory`` would print, for the fields implemented."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    if unknown:
        raise NotImplementedError(f"{directory}: fields {sorted(unknown)} are not rendered here")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        objects += render(path) if path.is_dir() else load_documents(path)
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise NotImplementedError(f"{directory}: only file patches are rendered, got {patch}")
        for doc in load_documents(directory / patch["path"]):
            kind, name = doc["kind"], doc["metadata"]["name"]
            hits = [
                n
                for n, obj in enumerate(objects)
                if obj["kind"] == kind and obj["metadata"]["name"] == name
            ]
            if len(hits) != 1:
                raise ValueError(f"{patch['path']}: {kind}/{name} matches {len(hits)} objects")
            objects[hits[0]] = strategic_merge(objects[hits[0]], doc)
    for rule in kustomization.get("images", []):
        for obj in objects:
            for container in _pod_containers(obj):
                _set_image(container, rule)
    if "namespace" in kustomization:
        for obj in objects:
            obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects
