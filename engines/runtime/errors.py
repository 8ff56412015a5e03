"""The error every engines step raises for a problem the user can fix."""

from vitfleet.errors import UserError


class EngineError(UserError):
    """An engine file or manifest is missing, altered, truncated, foreign or unbuildable; the message says how
    to fix it."""
