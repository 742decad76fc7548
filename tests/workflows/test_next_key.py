"""The shared next-key machinery of DeepLog and LogAnomaly, and the toy workflow their tests use."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from lmad.workflows.log_keys import (
    MIN_PROBABILITY,
    PAD,
    UNKNOWN,
    JobScores,
    JobSequences,
    KeyedSplits,
    keyed_splits,
)
from lmad.workflows.next_key import (
    cpu_threads,
    mask_reserved,
    rank_and_surprisal,
    split_runs,
    windows,
)

# -- the toy workflow (imported by test_deeplog.py and test_loganomaly.py) -------------------------
ORDER = (
    "create_dir_toy_0_condorpool",
    "stage_in_local_condorpool_0_0",
    "prepare_ID0000001",
    "simulate_ID0000002",
    "simulate_ID0000003",
    "merge_ID0000004",
    "stage_out_local_condorpool_0_0",
    "cleanup_toy_0_condorpool",
)
"""Every run lists these jobs in this (DAG) order."""
FEATURES = ["runtime", "queue_delay"]


def toy_runs(name: str, runs: int, anomalous: int, rng: np.random.Generator) -> pd.DataFrame:
    """``runs`` runs of :data:`ORDER`; in the first ``anomalous`` of them one job (not the first)
    has a runtime far above its usual range, so its key (``<type> runtime=high``) is unknown."""
    rows = []
    for r in range(runs):
        bad = int(rng.integers(1, len(ORDER))) if r < anomalous else -1
        for j, job in enumerate(ORDER):
            runtime = 10.0 * (j + 1) + float(rng.choice([0.0, 1.0]))
            queue = float(rng.choice([1.0, 2.0]))
            label = int(j == bad)
            runtime = runtime * 100 if label else runtime
            text = f"runtime is {runtime} queue_delay is {queue}"
            rows.append((text, label, f"{name}-run{r:03d}", job, label, runtime, queue))
    return pd.DataFrame(rows, columns=["text", "label", "run", "job", "label_id", *FEATURES])


def toy_splits(seed: int = 0) -> KeyedSplits:
    """Train: 40 runs (10 anomalous); validation and test: 20 runs (10 anomalous) each.

    The quantile is 0, so a normal job's key is its type alone (its features never leave the
    train range) and an anomalous job's key is unknown.
    """
    rng = np.random.default_rng(seed)
    train, validation, test = (
        toy_runs(n, k, 10, rng) for n, k in (("tr", 40), ("va", 20), ("te", 20))
    )
    return keyed_splits(train, validation, test, FEATURES, 0.0)


def job_f1(sequences: JobSequences, scores: JobScores, top_g: int) -> float:
    """Job-level F1 of the top-g rule."""
    return float(f1_score(sequences.job_labels(), np.concatenate(scores.flagged(top_g))))


def hashing_embed(texts: list[str], dim: int = 32) -> np.ndarray:
    """A cheap deterministic sentence embedding: hashed bag of words, L2-normalised."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.replace("=", " ").split():
            out[i, zlib.crc32(word.encode()) % dim] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def swapped(sequences: JobSequences, run: int, i: int, j: int) -> JobSequences:
    """One run of ``sequences`` with jobs ``i`` and ``j`` swapped (keys and texts)."""
    keys, texts = sequences.keys[run].copy(), list(sequences.texts[run])
    keys[[i, j]] = keys[[j, i]]
    texts[i], texts[j] = texts[j], texts[i]
    labels, rows = sequences.labels[run], sequences.rows[run]
    return JobSequences([sequences.runs[run]], [keys], [labels], [rows], [texts])


# -- tests of lmad.workflows.next_key -------------------------------------------------------------
def test_toy_workflow_keys_normal_jobs_by_type_and_anomalous_jobs_as_unknown():
    splits = toy_splits()
    assert len(splits.vocabulary) == 2 + 7  # PAD, UNKNOWN and the 7 job types
    assert len(splits.train.normal()) == 30
    test_keys = np.concatenate(splits.test.keys)
    labels = splits.test.job_labels()
    assert labels.sum() == 10
    assert (test_keys[labels == 1] == UNKNOWN).all() and (test_keys[labels == 0] != UNKNOWN).all()


def test_windows_are_the_previous_keys_left_padded_run_by_run():
    got = windows([np.array([5, 6, 7]), np.array([8])], 2)
    assert got.tolist() == [[PAD, PAD], [PAD, 5], [5, 6], [PAD, PAD]]
    assert windows([np.array([3, 4])], 1, pad=-1).tolist() == [[-1], [3]]
    assert windows([], 4).shape == (0, 4)


def test_rank_counts_keys_more_likely_than_the_true_one_and_never_the_reserved_ids():
    logits = torch.tensor(
        [
            [9.0, 9.0, 1.0, 3.0, 2.0],  # reserved ids have the largest logits: masked
            [0.0, 0.0, 1.0, 3.0, 2.0],
            [0.0, 0.0, 2.0, 2.0, 1.0],  # a tie shares the better rank
            [0.0, 0.0, 1.0, 3.0, 2.0],  # UNKNOWN
        ]
    )
    ranks, surprisal = rank_and_surprisal(logits, torch.tensor([3, 2, 3, UNKNOWN]))
    assert ranks.tolist() == [1, 3, 1, 5]
    known = torch.log_softmax(torch.tensor([1.0, 3.0, 2.0]), 0)
    assert surprisal[:2] == pytest.approx([-float(known[1]), -float(known[0])], rel=1e-6)
    assert surprisal[3] == pytest.approx(-math.log(MIN_PROBABILITY))


def test_surprisal_is_floored_at_min_probability():
    logits = torch.tensor([[0.0, 0.0, 0.0, 1000.0]])
    ranks, surprisal = rank_and_surprisal(logits, torch.tensor([2]))
    assert ranks.tolist() == [2]
    assert surprisal[0] == pytest.approx(-math.log(MIN_PROBABILITY))


def test_mask_reserved_leaves_the_known_keys():
    masked = mask_reserved(torch.ones(2, 4))
    assert torch.isinf(masked[:, [PAD, UNKNOWN]]).all() and (masked[:, 2:] == 1).all()


def test_split_runs_cuts_a_flat_array_back_per_run():
    parts = split_runs(np.arange(6), [2, 0, 4])
    assert [p.tolist() for p in parts] == [[0, 1], [], [2, 3, 4, 5]]
    assert split_runs(np.zeros(0), []) == []


def test_cpu_threads_sets_and_restores_torch_threads():
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
