"""What a user can get wrong, said in one line.

Every mistake a user can make (a missing file, NaN in a series, a window longer than the series, a
missing API key, a malformed CSV) raises a :class:`UserError` whose message says what is wrong and how
to fix it. Scripts catch it, print ``error: <message>`` and exit with code 2, without a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong flag."""

    exit_code = 2


class DataError(UserError):
    """Input data is missing, malformed or inconsistent."""


class ConfigError(UserError):
    """A flag, a configuration file or an API key is wrong or missing."""
