"""Atomic writes: content, permissions like a plain open(), and no temporary file left behind."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from lmad.io import atomic_save_npy, atomic_write_json, atomic_write_text


def test_atomic_writes_have_normal_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = stat.S_IMODE(os.stat(plain).st_mode)
    for path in (
        atomic_write_text(tmp_path / "a" / "t.txt", "hello"),
        atomic_write_json(tmp_path / "j.json", {"a": 1}),
        atomic_save_npy(tmp_path / "n.npy", np.arange(3)),
    ):
        assert stat.S_IMODE(os.stat(path).st_mode) == expected
    assert (tmp_path / "a" / "t.txt").read_text() == "hello"
    assert np.load(tmp_path / "n.npy").tolist() == [0, 1, 2]
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_write_keeps_the_old_file(tmp_path):
    target = atomic_write_text(tmp_path / "keep.txt", "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == "old"
    assert not list(tmp_path.glob("*.tmp"))
