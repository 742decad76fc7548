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

from lmad.cli import ArgumentParser, parse_id_list, positive_int, run_main, str2bool
from lmad.series.datasets import LOADERS

# Defaults a user may edit here; flags override them.
DATASET = "UCR"
DATA_DIR = "data"
WORKERS = 2


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


def build_parser() -> ArgumentParser:
    known = ", ".join(LOADERS)
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--dataset", default=DATASET, help=f"dataset name: {known} (default %(default)s)"
    )
    p.add_argument("--data_id_list", default="", help='series ids, e.g. "[135, 136]"; empty = all')
    p.add_argument("--mode", default="test", choices=["train", "test"], help="split to process")
    p.add_argument("--modality", default="image", choices=["image", "text"], help="output form")
    p.add_argument(
        "--window_size",
        type=positive_int,
        default=None,
        help="points per window (dataset default: 600; SMD 4500, NormA 900)",
    )
    p.add_argument(
        "--stride",
        type=positive_int,
        default=None,
        help="points between window starts, at most the window size. Not given: window_size // 3\n"
        "when --window_size is given (TAMA's window/3: three windows see each point, as c0 = 9\n"
        "needs), else the dataset default (200; SMD 1500, NormA 300)",
    )
    p.add_argument(
        "--x_ticks",
        type=positive_int,
        default=None,
        help="points between x ticks (dataset default)",
    )
    p.add_argument(
        "--aux_enable", type=str2bool, default=True, help="dashed guides at every tick (True/False)"
    )
    p.add_argument(
        "--subtask",
        default="detection",
        help="experiment variant; output goes to processed/<dataset>-<subtask> unless 'detection'.\n"
        "synthetic: detection | classification | global | contextual | frequency | trend | shapelet",
    )
    p.add_argument("--data_dir", default=DATA_DIR, help="root of raw and processed data")
    p.add_argument("--workers", type=positive_int, default=WORKERS, help="rendering processes")
    p.add_argument(
        "--train_fraction",
        type=fraction,
        default=0.3,
        help="leading share used as train split for single-file datasets (NormA, ECG, Dodgers, CSV)",
    )
    p.add_argument("--text_form", default="tama", choices=["tama", "index_value"])
    p.add_argument(
        "--width", type=positive_int, default=None, help="image width in pixels (dataset default)"
    )
    p.add_argument(
        "--height", type=positive_int, default=None, help="image height in pixels (dataset default)"
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.series.prepare import PrepareOptions, prepare_dataset

    options = PrepareOptions(
        dataset=args.dataset,
        ids=parse_id_list(args.data_id_list),
        mode=args.mode,
        modality=args.modality,
        window_size=args.window_size,
        stride=args.stride,
        x_ticks=args.x_ticks,
        aux_enable=args.aux_enable,
        subtask=args.subtask,
        data_dir=args.data_dir,
        workers=args.workers,
        train_fraction=args.train_fraction,
        text_form=args.text_form,
        width=args.width,
        height=args.height,
    )
    results = prepare_dataset(options)
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
