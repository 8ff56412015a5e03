"""Errors a deploy user can fix (bad fleet entries, missing keys, unreachable tools)."""

from vitfleet.errors import UserError


class DeployError(UserError):
    """Something about the deploy setup is wrong; the message says what and how to fix it."""
