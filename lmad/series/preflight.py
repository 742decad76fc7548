"""Checks made before the first request is sent: the run log fits the data, the files are whole.

A damaged or deleted image found halfway through a run used to stop it after answers had been paid
for (or crash it). :func:`check_window_files` looks at every file the run will read first: each PNG
must exist, start with the PNG signature and end with the ``IEND`` chunk (a file cut short by an
interrupted copy fails that test).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lmad.errors import DataError
from lmad.series.records import check_against_data, located
from lmad.series.windows import window_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(path: Path) -> str | None:
    """What is wrong with the PNG at ``path`` (None when it looks whole)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            handle.seek(max(0, size - 12))
            tail = handle.read(12)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if head != PNG_SIGNATURE:
        return "not a PNG image (damaged?)"
    if tail[4:8] != b"IEND":
        return "a PNG cut short (no end chunk)"
    return None


def check_window_files(
    folder: Path, modality: str, pairs: Iterable[tuple[int, int]], hint: str
) -> None:
    """Raise a :class:`DataError` naming the first bad file among ``(window, channel)`` pairs.

    Only the image modality reads files per window (text windows are written from ``windows.npy``).
    """
    if modality != "image":
        return
    bad = []
    for window, channel in pairs:
        path = folder / "image" / f"{window_name(window, channel)}.png"
        problem = png_problem(path)
        if problem:
            bad.append((path, problem))
    if bad:
        path, problem = bad[0]
        more = f" ({len(bad) - 1} more file(s) of that folder too)" if len(bad) > 1 else ""
        raise DataError(f"{path}: {problem}{more}; nothing was sent; make them again: {hint}")


def check_log_fits(log: Any, work: Iterable[Any], options: Any) -> None:
    """The run log must fit the processed data: same settings, windows and channels that exist.

    ``log`` is a :class:`~lmad.series.runlog.RunLog`, ``work`` the pipeline's series (each with
    ``series`` and its ``test`` split), ``options`` the run's options.
    """
    by_series = {item.series: item for item in work}
    expected = {}
    for item in by_series.values():
        meta = item.test.meta
        settings = {
            "modality": options.modality,
            "window_size": meta["window_size"],
            "stride": meta["stride"],
            "references": options.normal_reference,
        }
        expected[item.series] = (settings, str(item.test.folder))
    log.check_matches(expected)
    for record in log.records:
        item = by_series.get(str(record["series"]))
        if item is None:
            continue
        n_windows, window_size, channels = item.test.windows.shape
        try:
            check_against_data(record, n_windows, window_size, channels)
        except ValueError as exc:
            raise located(log.path, record.get("_line", 0), exc) from None
