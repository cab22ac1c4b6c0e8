"""Known third-party warnings that are noise to someone running the CLI or the demo.

Why a list of our own: these warnings are about other projects' internals (Airflow 3.3 reading
``.airflowignore`` with pathspec 1.x's deprecated pattern class; starlette's test client and
httpx), a user can do nothing about them, and printed between the lines of a demo they bury what
a newcomer wants to read. Each is matched by its message and category only, so any other warning
still shows. The tests do not call this: there warnings stay errors (pyproject filterwarnings).
"""

from __future__ import annotations

import warnings

# (message prefix as a regular expression, category)
KNOWN_NOISE: tuple[tuple[str, type[Warning]], ...] = (
    (r"GitWildMatchPattern \('gitwildmatch'\) is deprecated", DeprecationWarning),
    # starlette's StarletteDeprecationWarning derives from UserWarning, not DeprecationWarning.
    (r"Using `httpx` with `starlette\.testclient` is deprecated", UserWarning),
)


def silence_known_noise() -> None:
    """Ignore the warnings in KNOWN_NOISE for the rest of the process.

    Call it after importing Airflow, if the process imports Airflow: ``airflow.configuration``
    puts a "default" filter for DeprecationWarnings from ``airflow.*`` at the front of the filter
    list on import, and the first matching filter wins, so an earlier ignore never applies.
    """
    for message, category in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
