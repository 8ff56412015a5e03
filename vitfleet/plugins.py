"""Extensions from outside the kit: modules that register a decomposition method, a camera source, a board kind,
a power meter, ... at start.

Two ways to name one, both read before the CLI is built (so `--help` lists what they register):
- an installed package's entry point in the group `vitfleet.plugins` (in its pyproject.toml:
  `[project.entry-points."vitfleet.plugins"] mine = "my_package.vitfleet_plugin"`);
- `VITFLEET_PLUGINS=module[,module...]` in the environment (a module on the Python path, no packaging needed).
A module registers what it brings with the registry of that extension point (decompose/methods/registry.py,
camera/source_registry.py, vitfleet/board_kinds.py, power/meter_registry.py), as the kit's own do.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from vitfleet.errors import UserError

GROUP = "vitfleet.plugins"
ENV = "VITFLEET_PLUGINS"


class PluginError(UserError):
    """A plugin module that cannot be imported; the message names it and where it was named."""


def plugin_modules() -> list[tuple[str, str]]:
    """(module, where it was named) of every plugin, entry points first."""
    named = [
        (ep.value.split(":")[0], f"entry point {ep.name!r} of {ep.dist.name if ep.dist else 'a package'}")
        for ep in entry_points(group=GROUP)
    ]
    named += [(m.strip(), f"${ENV}") for m in os.environ.get(ENV, "").split(",") if m.strip()]
    return named


def load_plugins() -> list[str]:
    """Import every plugin module once; the modules imported."""
    loaded = []
    for module, where in plugin_modules():
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure of a foreign module is the user's to fix
            raise PluginError(
                f"plugin {module} (named by {where}) could not be imported: "
                f"{type(exc).__name__}: {exc}; fix it, or remove it from {where}"
            ) from None
        loaded.append(module)
    return loaded
