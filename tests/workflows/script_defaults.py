"""Check that a script's flag defaults are its options dataclass's, each written in one place.

Shared by the tests of the workflow and the trace scripts.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from lmad.cli import field_default


def has_default(item: dataclasses.Field) -> bool:
    return (
        item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
    )


def expected_defaults(script: ModuleType, options: type) -> dict[str, Any]:
    """What each flag of ``script`` should default to, from its one written place.

    A field with a default: that default. A field without one: the script's constant of the same
    name in capitals, passed through the flag's type when it is a string (as argparse does).
    """
    types = {a.dest: a.type for a in script.build_parser()._actions}
    expected = {}
    for item in dataclasses.fields(options):
        if item.name not in types:
            continue  # a library setting with no flag (e.g. FinetuneConfig.logging_steps)
        if has_default(item):
            expected[item.name] = field_default(options, item.name)
            continue
        value = getattr(script, item.name.upper())
        convert = types[item.name]
        expected[item.name] = convert(value) if isinstance(value, str) and convert else value
    return expected


def assert_defaults_written_once(script: ModuleType, options: type) -> dict[str, Any]:
    """Parse no flags and compare with :func:`expected_defaults`; returns the parsed values.

    Also: every flag is a field, every field without a default has a flag (the script must give
    it), and the parsed values build the options.
    """
    parsed = vars(script.build_parser().parse_args([]))
    fields = {item.name: item for item in dataclasses.fields(options)}
    assert set(parsed) <= set(fields), f"flags that are no field: {set(parsed) - set(fields)}"
    required = {name for name, item in fields.items() if not has_default(item)}
    assert required <= set(parsed), f"fields without a default or a flag: {required - set(parsed)}"
    assert parsed == expected_defaults(script, options)
    options(**parsed)
    return parsed
