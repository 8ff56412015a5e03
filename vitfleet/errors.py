"""The one error type the CLI shows as a sentence instead of a traceback.

Every component raises a subclass for mistakes a user can fix (a missing file, a
wrong key, a foreign version); the message says what is wrong and how to fix it.
"""


class UserError(RuntimeError):
    """Something the user can fix; str(error) is the whole explanation."""
