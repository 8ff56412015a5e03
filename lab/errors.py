"""The one error the lab raises: a sentence that says what is wrong and how to fix it."""

from vitfleet.errors import UserError


class LabError(UserError):
    pass
