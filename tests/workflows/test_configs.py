"""Model configs as TOML files: written by tune, read by train and evaluate."""

from __future__ import annotations

import pytest

from recstack.errors import ConfigError
from recstack.workflows.configs import load_config, save_config


def test_config_round_trip(tmp_path):
    params = {"factors": 48, "regularization": 30.0, "alpha": 2.0, "use_gpu": False, "x": None}
    path = save_config(params, tmp_path / "cfg" / "als.toml", model="als")
    assert path.read_text() == (
        '[model]\nname = "als"\n\n[params]\n'
        "factors = 48\nregularization = 30.0\nalpha = 2.0\nuse_gpu = false\n"
    )
    params.pop("x")
    assert load_config(path) == ("als", params)


def test_config_strings_lists_and_special_floats(tmp_path):
    import tomllib

    path = save_config(
        {"a": 'say "hi"\n', "b": [1, 2.5, "z"], "c": float("inf")},
        tmp_path / "x.toml",
        model="ease",
    )
    data = tomllib.loads(path.read_text())
    assert data["params"] == {"a": 'say "hi"\n', "b": [1, 2.5, "z"], "c": float("inf")}


def test_config_values_are_coerced_to_the_declared_types(tmp_path):
    path = tmp_path / "als.toml"
    path.write_text('[model]\nname = "als"\n[params]\nfactors = "48"\nalpha = 2\n')
    name, params = load_config(path)
    assert (name, params) == ("als", {"factors": 48, "alpha": 2.0})
    assert isinstance(params["alpha"], float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[params]\nl2 = 1.0\n", "missing \\[model\\]"),
        (
            '[model]\nname = "ease"\n[params]\nbogus = 1\n',
            "ease: unknown parameter 'bogus'; valid parameters: l2",
        ),
        ('[model]\nname = "ease"\n[params]\nmax_items = 0\n', "ease: invalid parameter max_items"),
        ('[model]\nname = "nope"\n', "unknown model 'nope'"),
        ("[model\nname=", "not valid TOML"),
        ('params = 3\n[model]\nname = "ease"\n', "must be a table"),
    ],
)
def test_bad_configs_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value) or "unknown model" in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
