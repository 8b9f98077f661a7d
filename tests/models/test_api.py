"""The public surface of ``aislehub.models``."""

from __future__ import annotations

import aislehub.models as models
from aislehub.errors import AislehubError
from aislehub.models.rules import RULES


def test_exported_names_exist() -> None:
    for name in models.__all__:
        assert getattr(models, name) is not None, name
    assert sorted(models.__all__) == models.__all__


def test_errors_belong_to_the_product_tree() -> None:
    assert issubclass(models.ModelError, AislehubError)
    assert issubclass(models.ModelErrors, AislehubError)


def test_every_rule_cites_the_spec() -> None:
    for rule in RULES.values():
        assert any(word in rule.spec for word in ("v2", "v3", "IoT Central")), rule
