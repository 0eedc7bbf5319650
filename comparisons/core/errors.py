"""The one exception for bad input or usage: run_all.py prints it as `error: ...` and exits 2."""


class UsageError(Exception):
    """Bad input or usage; the message says what was wrong and what to do."""


def nothing_to_run(why):
    """The UsageError of a run whose plan keeps no implementation: `why`, then what to change."""
    return UsageError(f"nothing to run: {why}; choose other implementations with --only or drop --batch-size")
