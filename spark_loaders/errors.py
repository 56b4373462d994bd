"""User-facing errors.

Anything raised as :class:`CondoError` is a problem the user can fix (missing Java,
a bad path, a database that will not start). The CLI prints its message on one line
and exits non-zero, without a stack trace.
"""


class CondoError(Exception):
    """An error caused by the environment or the user's input, reported without a traceback."""

    exit_code = 2
