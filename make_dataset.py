"""Turn a time-series dataset into windows drawn as images or written as text (TAMA step 1).

    python make_dataset.py --dataset UCR --mode train --modality image
    python make_dataset.py --dataset UCR --mode test --modality image --window_size 600 --stride 200

Writes data/processed/<dataset>/<series>/<mode>/{windows,labels}.npy, meta.json and image/ or text/,
and data/processed/<dataset>/<mode>_structure.yaml. With no UCR files present, the UCR series 135
bundled in aeon is written to data/UCR/ and used.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import fields
from typing import Any

from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    field_default,
    parse_id_list,
    positive_int,
    run_main,
    str2bool,
)
from lmad.series.datasets import LOADERS
from lmad.series.prepare import MODALITIES, MODES, PrepareOptions, prepare_dataset
from lmad.series.synthetic import SUBTASKS
from lmad.series.text import SERIALIZERS

# The dataset a bare run prepares; edit it here. Every other default is a field of PrepareOptions
# (lmad/series/prepare.py), the one place the flags below and the library code take it from.
DATASET = "UCR"


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (``--train_fraction``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1 (both excluded), got {text!r}"
        )
    return value


def dataset_defaults(attribute: str) -> str:
    """A spec value most datasets share, then the exceptions: ``600; SMD 4500, NormA 900``."""
    values = {loader.name: getattr(loader.spec, attribute) for loader in LOADERS.values()}
    common = Counter(values.values()).most_common(1)[0][0]
    others = ", ".join(f"{name} {value}" for name, value in values.items() if value != common)
    return f"{common}; {others}" if others else f"{common}"


def option_flag(parser: ArgumentParser, name: str, help: str, **kwargs: Any) -> None:
    """``--<name>`` defaulting to ``PrepareOptions.<name>``; a ``None`` default is explained in help."""
    value = field_default(PrepareOptions, name)
    if value is None:
        parser.add_argument(f"--{name}", default=value, help=help, **kwargs)
    else:
        add_field_flag(parser, PrepareOptions, name, help, **kwargs)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--dataset",
        default=DATASET,
        help=f"dataset name: {', '.join(LOADERS)} (default %(default)s)",
    )
    p.add_argument(
        "--data_id_list",
        dest="ids",
        metavar="DATA_ID_LIST",
        type=parse_id_list,
        default=field_default(PrepareOptions, "ids"),
        help='series ids, e.g. "[135, 136]"; empty = all',
    )
    option_flag(p, "mode", "split to process", choices=MODES)
    option_flag(p, "modality", "output form", choices=MODALITIES)
    window_flags(p)
    option_flag(p, "aux_enable", "dashed guides at every tick (True/False)", type=str2bool)
    option_flag(
        p,
        "subtask",
        f"experiment variant (synthetic: {' | '.join(SUBTASKS)});\n"
        "output goes to processed/<dataset>-<subtask> unless it is the default",
    )
    option_flag(p, "data_dir", "root of raw and processed data")
    option_flag(p, "workers", "rendering processes", type=positive_int)
    option_flag(
        p,
        "train_fraction",
        "leading share used as train split for single-file datasets (NormA, ECG, Dodgers, CSV)",
        type=fraction,
    )
    option_flag(p, "text_form", "text serialisation", choices=list(SERIALIZERS))
    for side in ("width", "height"):
        option_flag(p, side, f"image {side} in pixels (dataset default)", type=positive_int)
    return p


def window_flags(p: ArgumentParser) -> None:
    """``--window_size``, ``--stride`` and ``--x_ticks``: ``None`` defaults, the dataset's values."""
    option_flag(
        p,
        "window_size",
        f"points per window (dataset default: {dataset_defaults('window_size')})",
        type=positive_int,
    )
    option_flag(
        p,
        "stride",
        "points between window starts, at most the window size. Not given: window_size // 3\n"
        "when --window_size is given (TAMA's window/3: three windows see each point, as c0 = 9\n"
        f"needs), else the dataset default ({dataset_defaults('stride')})",
        type=positive_int,
    )
    option_flag(p, "x_ticks", "points between x ticks (dataset default)", type=positive_int)


def options_from_args(args: argparse.Namespace) -> PrepareOptions:
    """The parsed flags as :class:`PrepareOptions` (every field has a flag of the same name)."""
    return PrepareOptions(
        **{item.name: getattr(args, item.name) for item in fields(PrepareOptions)}
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    results = prepare_dataset(options_from_args(args))
    print(
        f"{'series':<22} {'mode':<5} {'windows':>7} {'normal':>6} {'abnormal':>8} "
        f"{'ch':>3} {'files':>6}  folder"
    )
    for r in results:
        extra = f"  (~{r.tokens_per_window:.0f} tokens/window)" if r.tokens_per_window else ""
        print(
            f"{r.series_id:<22} {args.mode:<5} {r.n_windows:>7} {r.n_normal:>6} {r.n_abnormal:>8} "
            f"{r.n_channels:>3} {r.n_files:>6}  {r.folder}/{args.modality}{extra}"
        )
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
