"""Render the package-data templates: `@@NAME@@` placeholders, every one must be filled.

A placeholder syntax that shell and systemd never use, so scripts keep their own `$VARS`.
"""

from __future__ import annotations

import re
from importlib import resources

from vitfleet.firmware_scripts.errors import DeployError

_PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")


def template_text(name: str) -> str:
    return resources.files("vitfleet.firmware_scripts").joinpath("templates", name).read_text()


def render(name: str, **values: object) -> str:
    text = template_text(name)
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if missing:
        # A template and its caller disagree: a programming error, but say exactly which names.
        raise DeployError(f"template {name} needs values for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)
