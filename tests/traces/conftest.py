"""Fixtures shared by the trace tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def semad_files(tmp_path_factory):
    """A tiny random Llama + BPE tokenizer folder, normal training traces, a labelled test set."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from lmad.traces.inject import inject_anomalies
    from lmad.traces.log_io import write_traces
    from lmad.traces.simulator import MODELS, simulate
    from tests.traces.test_scoring import bpe_tokenizer, tiny_llama

    root = tmp_path_factory.mktemp("semad_eval")
    chosen = [m for m in MODELS if m.name in ("order_to_cash", "hiring")]
    train = simulate(chosen, 100, seed=1)
    test = inject_anomalies(simulate(chosen, 60, seed=2), 0.3, np.random.default_rng(3), chosen)
    tok = bpe_tokenizer([t.text for t in train], vocab_size=300)
    tiny_llama(len(tok), hidden=32).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    write_traces(root / "training_data.csv", train, with_raw_cause=False)
    write_traces(root / "test_data.csv", test, with_raw_cause=True)
    return root
