"""Model configs as small TOML files: ``[model] name`` and a flat ``[params]`` table.

``recstack tune --out`` writes one; ``recstack train`` and ``recstack evaluate`` read them with
``--config``, so a tuned model can be trained or compared without retyping its parameters.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recstack.errors import ConfigError
from recstack.models.catalog import validate_params


def save_config(params: Mapping[str, Any], path: Path | str, *, model: str) -> Path:
    """Write ``model`` and its ``params`` as TOML (``[model] name`` and a ``[params]`` table).

    Values must be flat scalars (str, int, float, bool) or lists of them; ``None`` values are
    left out (the model's default, which is what None means in every model here, applies).
    """
    lines = ["[model]", f"name = {_toml_value(model)}", "", "[params]"]
    for key, value in params.items():
        if value is None:
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def load_config(path: Path | str) -> tuple[str, dict[str, Any]]:
    """Read a model config written by ``save_config`` (or by hand): ``(name, params)``.

    The params are checked by the model catalogue (names, types, ranges) and coerced to their
    declared types; only the keys in the file are returned, so defaults stay the model's.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ConfigError(f'{path}: missing [model] table with name = "<model>"')
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: [params] must be a table")
    name = model["name"]
    try:
        return name, validate_params(name, params, only_given=True)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        escaped = escaped.replace("\t", "\\t").replace("\r", "\\r")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if hasattr(value, "item"):  # numpy scalar
        return _toml_value(value.item())
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} to a TOML config")
