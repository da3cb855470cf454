"""Settings sources and error messages."""

from __future__ import annotations

import pytest

from recstack.errors import DataError, MissingExtraError, require
from recstack.settings import Settings


def test_env_overrides_and_store_url(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RECSTACK_HOME", str(tmp_path))
    s = Settings()
    assert s.store_url == f"sqlite:///{(tmp_path / 'recstack.db').resolve()}"
    monkeypatch.setenv("RECSTACK_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().store_url == "postgresql+psycopg://u@h/db"


def test_toml_config_file_is_read_and_env_wins(monkeypatch, tmp_path) -> None:
    cfg = tmp_path / "recstack.toml"
    cfg.write_text('model_name = "shop"\nrate_limit_per_minute = 7\n')
    monkeypatch.setenv("RECSTACK_CONFIG", str(cfg))
    assert Settings().model_name == "shop"
    monkeypatch.setenv("RECSTACK_MODEL_NAME", "env")
    s = Settings()
    assert (s.model_name, s.rate_limit_per_minute) == ("env", 7)


def test_weighting_follows_settings() -> None:
    s = Settings(event_weights={"view": 0.5})
    assert s.weighting().type_weight == {"view": 0.5}


def test_data_error_message_names_file_and_line() -> None:
    err = DataError("bad timestamp 'x'", file="a.csv", line=3)
    assert str(err) == "a.csv:3: bad timestamp 'x'"
    assert (err.file, err.line, err.reason) == ("a.csv", 3, "bad timestamp 'x'")


def test_require_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"recstack\[text\]"):
        require("surely_not_a_module_xyz", "text")
