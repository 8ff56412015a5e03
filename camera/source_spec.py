"""A parsed camera URI (camera/uri.py parses, the sources read their options from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vitfleet.errors import UserError


class CameraUriError(UserError):
    """A camera URI that names no known source or carries a bad option."""


@dataclass(frozen=True)
class SourceSpec:
    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)
    uri: str = ""
    live: bool = False  # a stream that may drop (its source kind says so: camera/source_registry.py)

    def int_option(self, key: str, default: int | None) -> int | None:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise CameraUriError(f"camera URI {self.uri!r}: option {key}={raw!r} must be an integer") from None
        if value < 0:
            raise CameraUriError(f"camera URI {self.uri!r}: option {key}={raw!r} must be >= 0")
        return value
