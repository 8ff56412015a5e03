"""Decomposition methods: the registry and the built-in ones. A new method is one module that calls
`register_method` (see the README's "Adding a method"); outside the kit, load it as a plugin (vitfleet/plugins.py).
"""

from vitfleet.decompose.methods import devit, edvit  # noqa: F401 - the built-ins register themselves
from vitfleet.decompose.methods.registry import (
    Method,
    MethodName,
    PruneShape,
    get_method,
    known_method,
    method_names,
    register_method,
)

__all__ = ["Method", "MethodName", "PruneShape", "get_method", "known_method", "method_names", "register_method"]
