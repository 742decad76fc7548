"""Zero-shot baselines: no training, no labels, just a pretrained model and two class names.

- **NLI** (the paper's zero-shot baseline): transformers' ``zero-shot-classification`` pipeline with
  an NLI model (``facebook/bart-large-mnli`` and others) asks, for each job sentence, whether
  "This job is normal." or "This job is abnormal." is entailed, and takes the likelier one.
- **Embedding similarity** (fully offline with the packaged all-MiniLM-L6-v2): job sentences and two
  label descriptions are embedded by mean pooling over the token embeddings (padding masked out)
  and L2-normalised; each job gets the label whose description is closer in cosine similarity.

Both predict normal (0) / anomalous (1) and are scored against the binary labels (every anomaly
class of the multi-class variant counts as anomalous). Their ``scores`` (higher = more anomalous):
NLI, the pipeline's score of the "abnormal" hypothesis (its entailment, normalised over the two
hypotheses); embedding, the similarity margin ``cos(job, abnormal) - cos(job, normal)``. Nothing
is trained (``train_time_s`` NaN); ``eval_time_s`` is the inference on the test rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.workflows.classifier import model_label, model_unavailable, resolve_model_path
from lmad.workflows.data import WorkflowData, classification_scores, sample_positions
from lmad.workflows.results import binary_predictions

log = logging.getLogger(__name__)

EMBEDDING_MODEL = "minilm"
"""The encoder of train_classifier.py's embedding zero-shot row (the packaged all-MiniLM-L6-v2)."""
NLI_BATCH_SIZE = 16
ENCODE_BATCH_SIZE = 64
NLI_LABELS = ("normal", "abnormal")
HYPOTHESIS = "This job is {}."
DESCRIPTIONS = (
    "a normal job with typical delays and runtime",
    "an abnormal job with unusually long delays or runtime",
)


# -- NLI -------------------------------------------------------------------------------------------
def nli_pipeline(model: str) -> Any:
    """transformers' zero-shot-classification pipeline for ``model`` (an NLI model id or path)."""
    from transformers import pipeline

    try:
        return pipeline("zero-shot-classification", model=resolve_model_path(model))
    except (OSError, ValueError) as exc:
        raise model_unavailable(model, exc) from None


def nli_predict(
    texts: Sequence[str],
    pipe: Any,
    labels: Sequence[str] = NLI_LABELS,
    hypothesis_template: str = HYPOTHESIS,
    batch_size: int = NLI_BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (1 where the pipeline ranks ``labels[1]``, abnormal, first, else 0) and the
    pipeline's score of ``labels[1]`` (float64); one entry per text."""
    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    outputs = pipe(
        list(texts),
        candidate_labels=list(labels),
        hypothesis_template=hypothesis_template,
        batch_size=batch_size,
    )
    if isinstance(outputs, dict):
        outputs = [outputs]
    if len(outputs) != len(texts):
        raise RuntimeError(f"the NLI pipeline answered {len(outputs)} of {len(texts)} texts")
    predicted = np.array([int(out["labels"][0] == labels[1]) for out in outputs], dtype=np.int64)
    scores = [dict(zip(out["labels"], out["scores"]))[labels[1]] for out in outputs]
    return predicted, np.asarray(scores, dtype=np.float64)


def run_nli(
    data: WorkflowData,
    model: str,
    limit: int | None,
    seed: int,
    pipe: Any = None,
    batch_size: int = NLI_BATCH_SIZE,
) -> dict[str, Any]:
    """NLI zero-shot on the test split (or a seeded sample of ``limit`` rows); metrics as usual.

    ``predictions``, ``scores`` (the abnormal hypothesis's score) and ``positions`` (the test rows
    asked) line up. ``pipe`` replaces the transformers pipeline (anything called like it), e.g. in
    tests.
    """
    positions = sample_positions(len(data.test), limit, seed)
    all_texts = data.texts("test")
    texts = [all_texts[i] for i in positions]
    pipe = pipe if pipe is not None else nli_pipeline(model)
    start = time.perf_counter()
    predicted, scores = nli_predict(texts, pipe, batch_size=batch_size)
    return {
        "model": model_label(model),
        "method": "zero-shot NLI",
        "train_time_s": float("nan"),
        "eval_time_s": time.perf_counter() - start,
        **classification_scores(data.binary_labels("test")[positions], predicted),
        "predictions": predicted,
        "scores": scores,
        "positions": positions,
        "n_test": len(positions),
    }


# -- embedding similarity -----------------------------------------------------------------------------
class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from any transformers encoder."""

    def __init__(self, model: str, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_path(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise model_unavailable(model, exc) from None
        self.model.eval()
        self.max_length = max_length

    def encode(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH_SIZE) -> np.ndarray:
        """``(len(texts), hidden)`` float32 array of unit vectors."""
        import torch
        from tqdm.auto import tqdm

        chunks = []
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc="embedding", disable=len(batches) < 4, leave=False):
            batch = list(texts[start : start + batch_size])
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length,
                return_tensors="pt",
            )  # fmt: skip
            with torch.inference_mode():
                tokens = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=1).float().numpy())
        if not chunks:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        return np.concatenate(chunks)


def similarity_predict(
    texts: Sequence[str],
    encoder: SentenceEncoder,
    descriptions: Sequence[str] = DESCRIPTIONS,
    batch_size: int = ENCODE_BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (index of the closest description) and the ``(n, len(descriptions))`` cosines."""
    if len(descriptions) < 2:
        raise ConfigError("embedding zero-shot needs one description per class (at least two)")
    labels = encoder.encode(list(descriptions), batch_size)
    jobs = encoder.encode(list(texts), batch_size)
    similarity = jobs @ labels.T
    return similarity.argmax(axis=1).astype(np.int64), similarity


def run_embedding(
    data: WorkflowData,
    model: str,
    limit: int | None,
    seed: int,
    descriptions: Sequence[str] = DESCRIPTIONS,
    encoder: SentenceEncoder | None = None,
) -> dict[str, Any]:
    """Embedding-similarity zero-shot on the test split (or a seeded sample of ``limit`` rows).

    ``predictions`` (1 when the closest description is not the first, the normal one), ``scores``
    (the margin: best similarity to an anomalous description minus the similarity to the normal
    one), ``similarity`` and ``positions`` line up. ``encoder`` replaces the one
    :class:`SentenceEncoder` would load for ``model`` (e.g. in tests).
    """
    positions = sample_positions(len(data.test), limit, seed)
    all_texts = data.texts("test")
    texts = [all_texts[i] for i in positions]
    encoder = encoder or SentenceEncoder(model)
    start = time.perf_counter()
    closest, similarity = similarity_predict(texts, encoder, descriptions)
    predicted = binary_predictions(closest)
    return {
        "model": model_label(model),
        "method": "zero-shot embedding",
        "train_time_s": float("nan"),
        "eval_time_s": time.perf_counter() - start,
        **classification_scores(data.binary_labels("test")[positions], predicted),
        "predictions": predicted,
        "scores": (similarity[:, 1:].max(axis=1) - similarity[:, 0]).astype(np.float64),
        "similarity": similarity,
        "positions": positions,
        "n_test": len(positions),
    }
