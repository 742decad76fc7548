"""LogBERT on a tiny hand-made workflow: detection, ranks, VHM, seeding, save/load, shapes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from lmad.workflows.log_keys import MIN_PROBABILITY, UNKNOWN, JobSequences, keyed_splits
from lmad.workflows.logbert import LogBERT, RunScores, vhm_loss

# A run: one create_dir, four pipeline, four postprocessing, two stage_out and one cleanup job.
ORDER = [
    "create_dir_demo_0_condorpool",
    *(f"pipeline_ID{i:07d}" for i in range(1, 5)),
    *(f"postprocess_ID{i:07d}" for i in range(5, 9)),
    "stage_out_local_condorpool_0_0",
    "stage_out_local_condorpool_1_0",
    "cleanup_demo_0_condorpool",
]
RUNTIME = {"create": 5.0, "pipeli": 100.0, "postpr": 50.0, "stage_": 10.0, "cleanu": 3.0}
SMALL = dict(hidden=32, layers=2, heads=4, epochs=40, batch_size=16, lr=2e-3, progress=False)


def make_split(runs: int, anomalous: int, seed: int, prefix: str) -> pd.DataFrame:
    """Normal runtimes and delays come from a few fixed values; an anomalous job runs 20x long."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(runs):
        bad = set(rng.choice(len(ORDER), size=2, replace=False)) if r < anomalous else set()
        for j, job in enumerate(ORDER):
            runtime = RUNTIME[job[:6]] + rng.choice([0.0, 1.0, 2.0])
            label = int(j in bad)
            rows.append(
                {
                    "text": f"{job} runtime {runtime}",
                    "label": label,
                    "run": f"{prefix}-run{r:03d}",
                    "job": job,
                    "label_id": label,
                    "runtime": runtime * (20.0 if label else 1.0),
                    "stage_in_delay": float(rng.choice([1.0, 2.0, 3.0])),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def splits():
    return keyed_splits(
        make_split(50, 10, 0, "train"),
        make_split(20, 8, 1, "validation"),
        make_split(30, 12, 2, "test"),
        ["runtime", "stage_in_delay"],
        0.0,
    )


@pytest.fixture(scope="module")
def model(splits):
    return LogBERT(len(splits.vocabulary), seed=0, **SMALL).fit(splits.train.normal())


def test_flags_anomalous_jobs_under_top_g(splits, model):
    scores = model.score(splits.test)
    y = splits.test.job_labels()
    assert y.sum() == 24
    for g in (1, 2):
        assert f1_score(y, np.concatenate(scores.flagged(g))) >= 0.9
    ranks, surprisal = np.concatenate(scores.ranks), np.concatenate(scores.surprisal)
    # anomalous jobs have unknown keys: rank len(vocabulary), surprisal -log MIN_PROBABILITY
    assert np.all(ranks[y == 1] == len(splits.vocabulary))
    assert np.allclose(surprisal[y == 1], -math.log(MIN_PROBABILITY))
    assert np.median(ranks[y == 0]) == 1
    assert surprisal[y == 0].max() < surprisal[y == 1].min()


def test_shapes_one_array_per_run_one_value_per_job(splits, model):
    scores = model.score(splits.validation)
    assert len(scores.ranks) == len(scores.surprisal) == len(splits.validation) == 20
    for keys, ranks, surprisal in zip(splits.validation.keys, scores.ranks, scores.surprisal):
        assert ranks.shape == surprisal.shape == keys.shape == (len(ORDER),)
        assert ranks.dtype == np.int64 and surprisal.dtype == np.float64
        assert ranks.min() >= 1 and ranks.max() <= len(splits.vocabulary)
        assert surprisal.min() >= 0.0
    empty = model.score(JobSequences([], [], [], [], []))
    assert empty.ranks == [] and empty.surprisal == []


def test_known_key_in_an_unusual_position_ranks_worse(splits, model):
    run = splits.test.normal().keys[0]
    assert UNKNOWN not in run
    swapped = run.copy()
    swapped[[2, 11]] = run[[11, 2]]  # cleanup among the pipeline jobs, a pipeline job last
    both = JobSequences(
        ["usual", "swapped"], [run, swapped], [run * 0] * 2, [run * 0] * 2, [[]] * 2
    )
    scores = model.score(both)
    usual_rank, swapped_rank = scores.ranks[0][11], scores.ranks[1][2]  # the cleanup key
    assert usual_rank == 1
    assert swapped_rank > 2
    assert scores.surprisal[1][2] > scores.surprisal[0][11] + 2.0


def test_vhm_loss_is_mean_squared_distance_to_the_centre():
    dist = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    centre = torch.tensor([1.0, 1.0])
    by_hand = ((0 + 1) + (4 + 1) + (1 + 1)) / 3
    assert float(vhm_loss(dist, centre)) == pytest.approx(by_hand)


def test_centre_is_the_mean_dist_output_and_training_shrinks_the_sphere(splits, model):
    normal = splits.train.normal()
    outputs = model._dist(list(normal.keys))
    assert torch.allclose(model.centre, outputs.mean(dim=0), atol=1e-5)
    history = model.history
    assert len(history) == SMALL["epochs"]
    assert history[-1]["vhm"] < 0.75 * history[0]["vhm"]
    assert history[-1]["mlkp"] < 0.5 * history[0]["mlkp"]
    for epoch in history:
        assert epoch["loss"] == pytest.approx(epoch["mlkp"] + 0.1 * epoch["vhm"], rel=1e-4)
    # the run-level distance of the training runs is the mean squared distance to c
    runs = model.run_scores(normal, top_g=2)
    by_hand = ((outputs - model.centre) ** 2).sum(dim=1).numpy()
    assert np.allclose(runs.distance, by_hand, atol=1e-5)


def test_run_scores_count_missed_keys(splits, model):
    jobs = model.score(splits.test)
    runs = model.run_scores(splits.test, top_g=2, jobs=jobs)
    assert isinstance(runs, RunScores)
    assert runs.missed.shape == runs.distance.shape == (30,)
    expected = np.array([int((r > 2).sum()) for r in jobs.ranks])
    assert np.array_equal(runs.missed, expected)
    truth = np.array([int(labels.any()) for labels in splits.test.labels])
    assert np.array_equal(runs.flagged(1), truth)  # anomalous runs miss both of their jobs
    assert np.all(runs.distance >= 0.0)


def test_same_seed_same_scores_and_save_load_round_trip(splits, tmp_path):
    quick = {**SMALL, "epochs": 3}
    vocab = len(splits.vocabulary)
    first = LogBERT(vocab, seed=7, **quick).fit(splits.train.normal())
    second = LogBERT(vocab, seed=7, **quick).fit(splits.train.normal())
    other = LogBERT(vocab, seed=8, **quick).fit(splits.train.normal())
    a, b, c = (m.score(splits.validation) for m in (first, second, other))
    for x, y in zip(a.surprisal + a.ranks, b.surprisal + b.ranks):
        assert np.array_equal(x, y)
    assert not np.array_equal(np.concatenate(a.surprisal), np.concatenate(c.surprisal))

    path = tmp_path / "logbert.pt"
    first.save(path)
    loaded = LogBERT.load(path, progress=False)
    assert loaded.get_params() == first.get_params()
    assert torch.equal(loaded.centre, first.centre)
    again = loaded.score(splits.validation)
    for x, y in zip(a.surprisal + a.ranks, again.surprisal + again.ranks):
        assert np.array_equal(x, y)


def test_runs_longer_than_max_length_are_scored_in_chunks(splits):
    detector = LogBERT(len(splits.vocabulary), max_length=5, seed=0, **{**SMALL, "epochs": 2})
    scores = detector.fit(splits.train.normal()).score(splits.test)
    assert [len(r) for r in scores.ranks] == [len(k) for k in splits.test.keys]
    assert [len(s) for s in scores.surprisal] == [len(k) for k in splits.test.keys]


def test_errors_before_fit_and_on_bad_ids(splits):
    detector = LogBERT(len(splits.vocabulary), progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.score(splits.test)
    with pytest.raises(ValueError, match="vocab_size"):
        LogBERT(3, progress=False).fit(splits.train.normal())
