"""Model name -> class, imported lazily so torch and friends load only when asked for.

The catalogue is also the one entry point for checking parameters by model name
(``validate_params``), so the CLI, the admin API, tuning and TOML configs reject a bad
parameter before any work starts, with the same message the model itself would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recstack.errors import ConfigError
from recstack.models.base import Recommender
from recstack.models.config import ModelConfig, parse_config
from recstack.models.names import MODELS, resolve

__all__ = ["MODELS", "config_class", "create_model", "model_class", "validate_params"]


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; a ConfigError lists the known names."""
    klass = resolve(name)
    if not issubclass(klass, Recommender):
        raise ConfigError(f"catalogue entry {name!r} is not a Recommender: {MODELS[name]}")
    return klass


def config_class(name: str) -> type[ModelConfig]:
    """The pydantic config of model ``name`` (its fields document every parameter)."""
    return model_class(name).config_class


def validate_params(
    name: str, params: Mapping[str, Any] | None, *, only_given: bool = False
) -> dict[str, Any]:
    """``params`` for model ``name`` checked and normalised to a flat dict.

    Returns every parameter, defaults filled in, values coerced to their declared types (what
    ``get_params()`` of the model would return); with ``only_given`` just the keys passed in.
    Raises ``ConfigError`` (an ``InvalidParamsError``) naming the model, the parameter at
    fault and the valid parameters with their ranges, or listing the models if ``name`` is
    unknown.
    """
    config = parse_config(config_class(name), name, params)
    return config.model_dump(exclude_unset=only_given)


def create_model(name: str, **params: Any) -> Recommender:
    """Instantiate model ``name`` with ``params``, checked by ``validate_params``."""
    return model_class(name).from_params(validate_params(name, params))
