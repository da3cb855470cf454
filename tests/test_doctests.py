"""Every doctest in the package runs (hand-computed examples of statistics, parsers, helpers)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import recstack
from recstack.errors import MissingExtraError

MODULES = sorted(m.name for m in pkgutil.walk_packages(recstack.__path__, "recstack."))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except MissingExtraError as exc:  # an optional extra is not installed here
        pytest.skip(str(exc))
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
