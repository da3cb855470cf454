"""Typed model configs, and the one place a model's parameters are checked.

Every recommender keeps its hyper-parameters in a ``ModelConfig`` subclass (extra keys
forbidden, ranges declared on the fields). The CLI, the admin API, tuning, MLflow and TOML
files all hand flat dicts to ``parse_config``, so a bad parameter gets the same message
wherever it came from: the model, the parameter at fault and every valid parameter with its
type, range and default.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from recstack.errors import ConfigError


class ModelConfig(BaseModel):
    """Base of every model's config: flat, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InvalidParamsError(ConfigError, ValueError):
    """A model was given an unknown or out-of-range parameter.

    It is a ``ValueError`` too, so callers that caught the ``ValueError`` constructors used to
    raise keep working.

    Attributes:
        model: the model's catalogue name.
        parameters: the offending parameter names.
        valid: every valid parameter mapped to its description (type, range, default).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        parameters: list[str] | None = None,
        valid: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.parameters = parameters or []
        self.valid = valid or {}


_BOUNDS: tuple[tuple[str, str], ...] = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _type_text(annotation: Any) -> str:
    """``int``, ``float or None``, ``'random' or 'latest'``: how a user would write the type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def field_bounds(config_class: type[BaseModel], name: str) -> dict[str, Any]:
    """The declared numeric bounds of a field, as ``{"ge": 1, "le": 10}``."""
    out: dict[str, Any] = {}
    for item in config_class.model_fields[name].metadata:
        for key, _ in _BOUNDS:
            if getattr(item, key, None) is not None:
                out[key] = getattr(item, key)
    return out


def describe_field(config_class: type[BaseModel], name: str) -> str:
    """``"factors (int, >= 1, default 64)"``: one parameter as shown in error messages."""
    field = config_class.model_fields[name]
    parts = [_type_text(field.annotation)]
    bounds = field_bounds(config_class, name)
    parts += [f"{symbol} {bounds[key]}" for key, symbol in _BOUNDS if key in bounds]
    parts.append(f"default {field.default!r}")
    return f"{name} ({', '.join(parts)})"


def describe_params(config_class: type[BaseModel]) -> dict[str, str]:
    """Every parameter of a config mapped to its ``describe_field`` text."""
    return {name: describe_field(config_class, name) for name in config_class.model_fields}


def parse_config(
    config_class: type[ModelConfig], model: str, params: Mapping[str, Any] | None
) -> ModelConfig:
    """``params`` validated into ``config_class``; an ``InvalidParamsError`` says what is wrong.

    Values are coerced where the meaning is plain (``"64"`` or ``64.0`` for an int, ``"true"``
    for a bool), so parameters read from the command line or a text field work as typed.
    """
    given = dict(params or {})
    valid = describe_params(config_class)
    listing = "; ".join(valid.values()) or "none"
    unknown = sorted(str(key) for key in given if key not in config_class.model_fields)
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise InvalidParamsError(
            f"{model}: unknown {noun} {', '.join(map(repr, unknown))}; valid parameters: {listing}",
            model=model,
            parameters=unknown,
            valid=valid,
        )
    try:
        return config_class.model_validate(given)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            problems.setdefault(name, f"{name}={error['input']!r}: {error['msg']}")
        raise InvalidParamsError(
            f"{model}: invalid parameter {'; '.join(problems.values())}; "
            f"valid parameters: {listing}",
            model=model,
            parameters=sorted(problems),
            valid=valid,
        ) from None


def config_defaults(config_class: type[BaseModel]) -> dict[str, Any]:
    """The default value of every field (all fields of a model config have one)."""
    return {name: field.default for name, field in config_class.model_fields.items()}


def config_from_defaults(class_name: str, defaults: Mapping[str, Any]) -> type[ModelConfig]:
    """An untyped config for a ``Recommender`` that declares only a ``defaults`` dict.

    Keeps small hand-written models (tests, plugins) working: names are still checked, values
    are passed through as given.
    """
    fields: dict[str, Any] = {key: (Any, value) for key, value in defaults.items()}
    return create_model(f"{class_name}Config", __base__=ModelConfig, **fields)
