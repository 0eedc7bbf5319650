"""The one exception for bad input or usage: run_all.py prints it as `error: ...` and exits 2."""


class UsageError(Exception):
    """Bad input or usage; the message says what was wrong and what to do."""
