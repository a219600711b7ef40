"""Errors a user can act on. The command line prints their message (no traceback) and exits 2."""


class UserError(Exception):
    """Bad input or an unusable environment, explained in the message."""

    exit_code = 2
