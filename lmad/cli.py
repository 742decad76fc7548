"""Helpers shared by the thin scripts: running a main function, parsing flag values.

The scripts own argparse and printing; this module only turns a :class:`~lmad.errors.UserError` into
one ``error:`` line and exit code 2, and parses the flag formats the original scripts used.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lmad.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with lmad's error form: one ``error: ...`` line on stderr and exit code 2.

    Plain argparse prints the usage block and ``prog: error: ...``; a wrong flag is a user error
    like any other, so it reads the same as the others.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawTextHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _bounded(kind: type, low: float, inclusive: bool, what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or (value < low if inclusive else value <= low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = _bounded(int, 0, False, "an integer >= 1")
"""argparse type: an integer of at least 1 (``--limit``, ``--concurrency``, ``--window_size``)."""
non_negative_int = _bounded(int, 0, True, "an integer >= 0")
"""argparse type: an integer of at least 0 (``--normal_reference``)."""
positive_float = _bounded(float, 0.0, False, "a number > 0")
"""argparse type: a finite number above 0 (``--timeout``)."""


def unit_interval(text: str) -> float:
    """argparse type: a number in (0, 1] (``--normalised_threshold``)."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def share_below_one(text: str) -> float:
    """argparse type: a share in [0, 1) (``--pat``: more than this share of a segment)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def steps_or_all(text: str) -> int:
    """argparse type of ``--max_steps``: -1 (train every epoch) or a number of steps >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value != -1 and value < 1:
        raise argparse.ArgumentTypeError(
            f"expected -1 (all epochs) or an integer >= 1, got {text!r}"
        )
    return value


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def field_default(options: type, name: str) -> Any:
    """The default of field ``name`` of the options dataclass ``options`` (its one written place)."""
    for item in dataclasses.fields(options):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:
                return item.default_factory()
            raise TypeError(f"{options.__name__}.{name} has no default")
    raise TypeError(f"{options.__name__} has no field {name!r}")


def add_field_flag(
    parser: argparse.ArgumentParser,
    options: type,
    name: str,
    help: str,
    flag: str | None = None,
    default: Any = dataclasses.MISSING,
    **kwargs: Any,
) -> argparse.Action:
    """Add ``--<name>`` whose default is the options dataclass field's, so it is written once.

    ``default`` overrides it for a script that means another value (a constant at the top of the
    script); ``help`` gets "(default ...)" appended.
    """
    value = field_default(options, name) if default is dataclasses.MISSING else default
    return parser.add_argument(
        flag or f"--{name}", default=value, help=f"{help} (default %(default)s)", **kwargs
    )


def setup_logging(verbose: bool = False) -> None:
    """Send library log records to stderr as ``warning: ...`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger("lmad")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None):
    """Run a script's ``main``; a :class:`UserError` becomes ``error: ...`` and exit code 2."""
    setup_logging()
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted; everything finished so far is kept", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def str2bool(value: str | bool) -> bool:
    """Parse ``True``/``False`` style flag values (``--aux_enable False``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "y", "on"}:
        return True
    if text in {"0", "false", "f", "no", "n", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def parse_id_list(value: str | None) -> list[str] | None:
    """Parse ``"[135, 136]"``, ``"135,136"`` or ``"[machine-1-1]"`` into a list of series ids.

    An empty value or ``[]`` means "every series found" and returns ``None``.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text in {"", "[]", "all"}:
        return None
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        parsed = None
    if isinstance(parsed, (list, tuple)):
        items = [str(item).strip() for item in parsed]
    elif isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
        items = [str(parsed)]
    else:
        items = [part.strip().strip("'\"") for part in text.strip("[]").split(",")]
    items = [item for item in items if item]
    if not items:
        return None
    return items
