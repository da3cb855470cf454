"""Typed model configs through the catalogue: validate_params, config_class, create_model."""

from __future__ import annotations

import pydantic
import pytest

from recstack.errors import ConfigError
from recstack.models.catalog import MODELS, config_class, create_model, model_class, validate_params
from recstack.models.config import InvalidParamsError, ModelConfig, describe_field, parse_config


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_has_a_documented_config_matching_its_defaults(name: str) -> None:
    config = config_class(name)
    assert issubclass(config, ModelConfig) and config is model_class(name).config_class
    assert config.model_config.get("extra") == "forbid"
    assert all(field.description for field in config.model_fields.values())
    assert validate_params(name, {}) == model_class(name).defaults == config().model_dump()


def test_validate_params_fills_defaults_and_coerces_types() -> None:
    params = validate_params("als", {"factors": "32", "alpha": 2, "use_gpu": "false"})
    assert params == {**model_class("als").defaults, "factors": 32, "alpha": 2.0}
    assert type(params["factors"]) is int and type(params["alpha"]) is float
    assert validate_params("als", {"factors": 32.0}, only_given=True) == {"factors": 32}
    assert validate_params("ease", None, only_given=True) == {}


def test_validate_params_accepts_none_where_the_config_does() -> None:
    assert validate_params("ease", {"l2": None})["l2"] is None
    assert validate_params("popularity", {"half_life_days": 7})["half_life_days"] == 7.0


def test_unknown_parameter_names_model_parameter_and_valid_ranges() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_params("als", {"factorz": 8, "alpha": 1.0})
    error = caught.value
    assert isinstance(error, InvalidParamsError) and isinstance(error, ValueError)
    message = str(error)
    assert message.startswith("als: unknown parameter 'factorz'; valid parameters: ")
    assert "factors (int, >= 1, <= 4096, default 128)" in message
    assert "regularization (float or None, >= 0.0, default None)" in message
    assert "random_state (int or None, >= 0, default 0)" in message
    assert error.model == "als" and error.parameters == ["factorz"]
    assert set(error.valid) == set(model_class("als").defaults)


def test_several_unknown_parameters_are_all_named() -> None:
    with pytest.raises(ConfigError, match="unknown parameters 'a', 'b'"):
        validate_params("itemknn", {"b": 1, "a": 2})


@pytest.mark.parametrize(
    ("name", "params", "shown"),
    [
        ("als", {"factors": 0}, "factors=0: Input should be greater than or equal to 1"),
        ("bpr", {"learning_rate": 0.0}, "learning_rate=0.0: Input should be greater than 0"),
        ("itemknn", {"shrink": -1.0}, "shrink=-1.0"),
        ("two_tower", {"oov_rate": 1.5}, "oov_rate=1.5: Input should be less than or equal to 1"),
        ("two_tower", {"val_holdout": "first"}, "val_holdout='first': Input should be 'random'"),
        ("content", {"half_life_days": 0}, "half_life_days=0"),
        ("ease", {"max_items": "many"}, "max_items='many'"),
        ("popularity", {"similar_neighbors": 2.5}, "similar_neighbors=2.5"),
    ],
)
def test_out_of_range_or_mistyped_parameter(name: str, params: dict, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_params(name, params)
    message = str(caught.value)
    assert message.startswith(f"{name}: invalid parameter ") and shown in message, message
    assert "valid parameters: " in message
    assert caught.value.parameters == list(params)
    with pytest.raises(ConfigError, match="invalid parameter"):
        create_model(name, **params)


def test_unknown_model_lists_the_catalogue() -> None:
    for call in (lambda: validate_params("svd", {}), lambda: config_class("svd")):
        with pytest.raises(ConfigError, match="unknown model 'svd'; known: popularity, itemknn"):
            call()


def test_create_model_goes_through_validate_params(monkeypatch) -> None:
    import recstack.models.catalog as catalog

    seen = []
    real = catalog.validate_params
    monkeypatch.setattr(
        catalog, "validate_params", lambda name, params: seen.append(name) or real(name, params)
    )
    model = create_model("itemknn", k_neighbors="20")
    assert seen == ["itemknn"] and model.config.k_neighbors == 20
    assert model.get_params() == {"k_neighbors": 20, "shrink": 30.0, "normalize": False}


def test_constructor_keywords_and_from_params_agree() -> None:
    cls = model_class("bpr")
    by_keywords = cls(factors=8, iterations=3)
    by_dict = cls.from_params({"factors": 8, "iterations": 3})
    assert by_keywords.config == by_dict.config
    assert by_keywords.meta.params == by_keywords.get_params()


def test_configs_are_frozen() -> None:
    model = create_model("als", factors=8)
    with pytest.raises(pydantic.ValidationError):
        model.config.factors = 16  # type: ignore[misc]


def test_describe_field_and_parse_config_on_a_small_config() -> None:
    class Small(ModelConfig):
        n: int = pydantic.Field(3, gt=0, lt=10, description="n")

    assert describe_field(Small, "n") == "n (int, > 0, < 10, default 3)"
    assert parse_config(Small, "small", {"n": "4"}).n == 4
    with pytest.raises(ConfigError, match=r"small: invalid parameter n=10: .*n \(int, > 0, < 10"):
        parse_config(Small, "small", {"n": 10})
