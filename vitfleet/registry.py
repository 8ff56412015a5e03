"""What every extension point's registry does, once: named records in registration order.

Methods, fusion heads, camera sources, board kinds and power meters each keep one `Registry` in their own module
(decompose/methods/registry.py, decompose/fusion_heads/registry.py, camera/source_registry.py,
vitfleet/board_kinds.py, power/meter_registry.py), which adds what is particular to it. The CLI's choices, the
configs' validators and the pipelines ask the registry, so a record registered by a plugin (vitfleet/plugins.py)
is a choice everywhere. Pure stdlib: boards import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from vitfleet.errors import UserError

T = TypeVar("T")

# Name rules: a Python identifier (names that become bundle fields and CLI choices), a URI scheme, and a CLI/log
# word of lower-case words joined by hyphens.
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
SCHEME = r"[a-z0-9]+"
HYPHENATED = r"[a-z0-9]+(-[a-z0-9]+)*"


class Registry(Generic[T]):
    """Records of one extension point by name. `what` names a record in messages ("board kind"); a name must match
    `name_pattern` (a CLI choice, a config value or a file's key), described for the user by `name_rule`."""

    def __init__(self, what: str, key: Callable[[T], str], name_pattern: str, name_rule: str) -> None:
        self.what = what
        self._key = key
        self._pattern = re.compile(name_pattern)
        self._rule = name_rule
        self._records: dict[str, T] = {}

    def register(self, record: T) -> T:
        """Add a record, or replace the one of the same name where it stands (registration order is kept)."""
        name = self._key(record)
        if not isinstance(name, str) or not self._pattern.fullmatch(name):
            raise ValueError(f"a {self.what} name is {self._rule}, got {name!r}")
        self._records[name] = record
        return record

    def get(self, name: str) -> T | None:
        return self._records.get(name)

    def require(self, name: str) -> T:
        """The record, or a one-sentence UserError naming the registered ones."""
        if name not in self._records:
            raise UserError(self.unknown(name))
        return self._records[name]

    def known(self, name: Any) -> str:
        """A pydantic validator's check (ValueError, which pydantic reports with the field): a registered name."""
        if name not in self._records:
            raise ValueError(self.unknown(name))
        return name

    def unknown(self, name: Any) -> str:
        return f"unknown {self.what} {name!r}; use one of {', '.join(self.names())}"

    def names(self) -> list[str]:
        """Registered names, in registration order (the kit's own first)."""
        return list(self._records)

    def records(self) -> list[T]:
        return list(self._records.values())

    def __contains__(self, name: object) -> bool:
        return name in self._records

    @contextmanager
    def scratch(self) -> Iterator[Registry[T]]:
        """Registrations made inside are forgotten on leaving (a test registers a toy record without leaking it)."""
        saved = dict(self._records)
        try:
            yield self
        finally:
            self._records = saved
