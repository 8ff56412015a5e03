"""The mechanics every extension point's registry shares (vitfleet/registry.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vitfleet.errors import UserError
from vitfleet.registry import HYPHENATED, Registry


@dataclass(frozen=True)
class Thing:
    name: str
    size: int = 0


def _things() -> Registry[Thing]:
    reg: Registry[Thing] = Registry("thing", lambda t: t.name, HYPHENATED, "lower-case words joined by hyphens")
    for name in ("alpha", "beta-2", "gamma"):
        reg.register(Thing(name))
    return reg


def test_order_is_registration_order_and_replacing_keeps_the_place() -> None:
    reg = _things()
    assert reg.names() == ["alpha", "beta-2", "gamma"]
    reg.register(Thing("beta-2", size=5))
    assert reg.names() == ["alpha", "beta-2", "gamma"] and reg.require("beta-2").size == 5
    assert "gamma" in reg and "delta" not in reg and reg.get("delta") is None


def test_unknown_names_get_one_sentence_listing_the_registered_ones() -> None:
    reg = _things()
    with pytest.raises(UserError, match=r"^unknown thing 'delta'; use one of alpha, beta-2, gamma$"):
        reg.require("delta")
    with pytest.raises(ValueError, match=r"^unknown thing 3; use one of alpha, beta-2, gamma$"):
        reg.known(3)
    assert reg.known("gamma") == "gamma"


@pytest.mark.parametrize("bad", ["Alpha", "with space", "trailing-", "", "a_b"])
def test_a_name_breaking_the_rule_is_refused_before_it_is_registered(bad: str) -> None:
    reg = _things()
    with pytest.raises(ValueError, match="a thing name is lower-case words joined by hyphens, got"):
        reg.register(Thing(bad))
    assert reg.names() == ["alpha", "beta-2", "gamma"]


def test_a_scratch_forgets_what_was_registered_in_it_even_on_error() -> None:
    reg = _things()
    with pytest.raises(RuntimeError), reg.scratch():
        reg.register(Thing("toy"))
        reg.register(Thing("alpha", size=9))
        assert reg.names() == ["alpha", "beta-2", "gamma", "toy"] and reg.require("alpha").size == 9
        raise RuntimeError("the test failed")
    assert reg.names() == ["alpha", "beta-2", "gamma"] and reg.require("alpha").size == 0
