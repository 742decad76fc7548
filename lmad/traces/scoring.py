"""SemAD scoring: token, event and trace anomaly scores of a reconstruction-tuned causal LM.

Definitions (SemAD paper and code, guanwei49/SemAD; docs/design.md, "Traces"):

* The model reads ``[start] t_1 … t_n`` (``start`` = the tokenizer's BOS, or its EOS when it has no
  BOS; the raw trace text, no prompt template) and predicts the targets ``t_1 … t_n, EOS``.
* **Token score** of target ``y_t`` with predicted distribution ``p``:
  ``s_t = Σ_v p_v log p_v − log p(y_t)``, the surprisal of the true token minus the entropy of the
  prediction (0 on average when the model is calibrated; large when an unexpected token comes).
* **Events** are the activities separated by ``" , "`` in the trace text. Each target token belongs
  to the event whose character span it overlaps most, using the fast tokenizer's character offsets;
  so any tokenizer works and names containing commas (``"check, approve"``) stay one event. Tokens
  that overlap no event character (the ``","`` of a separator, or a lone space) belong to no event
  and are ignored, exactly like SemAD drops its split token (Llama-3's ``" ,"``, id 1174). A token
  that straddles a separator and an event (``" b"`` = separator space + ``b``) belongs to the event.
  Ties go to the earlier event. An event that wins no token (a tokenizer merging across the
  separator) takes every token that overlaps it.
* **Event score** = ``sigmoid(Σ_k α^k s_k / Σ_k α^k)`` with α = 0.6 and ``k`` the token's position
  in the event (0 for the first token, which weighs most).
* The EOS prediction is an extra pseudo-event "end of trace" (a single token, score
  ``sigmoid(s_EOS)``). **Trace score** = max over the events and the end-of-trace pseudo-event;
  event-level metrics use the real events only.

Memory: the model is asked for hidden states only (its decoder, ``get_decoder()``), and the output
head, log-softmax and entropy are applied to ``chunk_size`` positions at a time, so no tensor of
shape (batch, sequence, vocabulary) is ever built. Models whose logits are not simply
``lm_head(last hidden state)`` (soft-capping, scaling, custom wrappers) are detected on the first
batch and scored from their logits, still chunked for the softmax.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmad.errors import DataError

log = logging.getLogger(__name__)

SEPARATOR = " , "
CHECK_POSITIONS = 8
# alpha, threshold, batch and chunk size are eval.py's flags (its constants hold the defaults)


@dataclass
class TraceScore:
    """Scores of one trace: per event (sigmoid), the end-of-trace pseudo-event, raw token scores."""

    events: np.ndarray
    end: float
    tokens: list[np.ndarray]
    """Raw token scores ``s_t`` per event, then one array for the EOS prediction."""

    @property
    def trace(self) -> float:
        """Max over the events and the end-of-trace pseudo-event."""
        return float(max(float(np.max(self.events, initial=-math.inf)), self.end))


def sigmoid(x: Any) -> Any:
    """The logistic function, without overflow warnings."""
    from scipy.special import expit

    return expit(x)


def weighted_score(token_scores: Sequence[float], alpha: float) -> float:
    """``Σ_k α^k s_k / Σ_k α^k`` (k = 0 for the first token); NaN for no tokens."""
    s = np.asarray(token_scores, dtype=np.float64)
    if s.size == 0:
        return math.nan
    w = alpha ** np.arange(s.size, dtype=np.float64)
    return float((w * s).sum() / w.sum())


def event_score(token_scores: Sequence[float], alpha: float) -> float:
    """SemAD's event score: the sigmoid of :func:`weighted_score`."""
    return float(sigmoid(weighted_score(token_scores, alpha)))


def event_spans(text: str, separator: str = SEPARATOR) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the events of a trace text joined by ``separator``."""
    spans, start = [], 0
    while (cut := text.find(separator, start)) >= 0:
        spans.append((start, cut))
        start = cut + len(separator)
    spans.append((start, len(text)))
    return spans


def event_members(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """Token indices of each event, in order, from character offsets (see the module docstring).

    Raises:
        DataError: an event that no token overlaps (an empty activity name).
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    sp = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    overlap = np.minimum(off[:, None, 1], sp[None, :, 1]) - np.maximum(
        off[:, None, 0], sp[None, :, 0]
    )
    overlap = np.maximum(overlap, 0)
    owner = np.where(overlap.max(axis=1, initial=0) > 0, overlap.argmax(axis=1), -1)
    members = []
    for e in range(len(sp)):
        idx = np.flatnonzero(owner == e)
        if idx.size == 0:
            idx = np.flatnonzero(overlap[:, e] > 0)
        if idx.size == 0:
            raise DataError(
                f"event {e + 1} (characters {sp[e, 0]}-{sp[e, 1]}) has no tokens; "
                "empty activity names cannot be scored"
            )
        members.append(idx)
    return members


def encode_for_scoring(tokenizer: Any, text: str) -> tuple[list[int], list[np.ndarray]]:
    """Model input ``[start] t_1 … t_n`` and, per event, the indices of its targets.

    Target ``i`` (predicted at input position ``i``) is ``t_{i+1}``; target ``n`` is EOS, the
    end-of-trace pseudo-event, appended last to the returned member list.
    """
    if not text.strip():
        raise DataError("a trace is empty; every trace needs at least one activity")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    members = event_members(enc["offset_mapping"], event_spans(text))
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [start, *ids], [*members, np.array([len(ids)])]


def scores_from_logits(logits: Any, targets: Any) -> Any:
    """``Σ_v p_v log p_v − log p(y)`` for logits (N, V) and targets (N,), in float32."""
    import torch

    return _scores_from_logp(torch.log_softmax(logits.float(), dim=-1), targets)


def _scores_from_logp(logp: Any, targets: Any) -> Any:
    neg_entropy = logp.exp().mul_(logp).sum(dim=-1)  # in place: no third (N, V) tensor
    return neg_entropy - logp.gather(-1, targets[:, None]).squeeze(-1)


def chunked_scores(states: Any, targets: Any, head: Any | None, chunk_size: int) -> Any:
    """Token scores of ``states`` (N, H hidden states with ``head``, or N, V logits without).

    Only ``chunk_size`` rows of logits and log-probabilities exist at any time (the logits of a
    chunk are freed as soon as its log-softmax exists).
    """
    import torch

    out = []
    for start in range(0, states.shape[0], max(1, int(chunk_size))):
        piece = states[start : start + chunk_size]
        logp = torch.log_softmax((head(piece) if head is not None else piece).float(), dim=-1)
        out.append(_scores_from_logp(logp, targets[start : start + chunk_size]))
        del logp
    return torch.cat(out) if out else states.new_zeros(0, dtype=torch.float32)


def full_softmax_scores(logits: Any, targets: Any) -> Any:
    """The original's way, for comparison: one softmax over all (B, T, V) logits at once."""
    import torch

    probs = torch.softmax(logits.float(), dim=-1)
    neg_entropy = torch.xlogy(probs, probs).sum(dim=-1)
    return neg_entropy - torch.log(probs.gather(-1, targets[..., None]).squeeze(-1))


def _split_head(model: Any) -> tuple[Any, Any] | None:
    """``(decoder, lm_head)`` of a Hugging Face causal LM (PEFT-wrapped or not), else None."""
    import torch

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    get_head = getattr(base, "get_output_embeddings", None)
    get_decoder = getattr(base, "get_decoder", None)
    if not callable(get_head) or not callable(get_decoder):
        return None
    try:
        head, decoder = get_head(), get_decoder()
    except (AttributeError, NotImplementedError):
        return None
    if not isinstance(head, torch.nn.Linear) or decoder is None or decoder is base:
        return None
    return decoder, head


class TraceScorer:
    """Scores trace texts with a causal LM (see the module docstring for the definitions)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        alpha: float,
        batch_size: int,
        chunk_size: int,
        split_head: bool = True,
    ) -> None:
        if batch_size < 1 or chunk_size < 1:
            raise DataError("batch_size and chunk_size must be at least 1")
        self.model, self.tokenizer, self.alpha = model, tokenizer, alpha
        self.batch_size, self.chunk_size = batch_size, chunk_size
        self._split = _split_head(model) if split_head else None
        self._checked = self._split is None

    @property
    def uses_hidden_states(self) -> bool:
        """Whether the output head is applied per chunk (no full logits from the model)."""
        return self._split is not None

    def _device(self) -> Any:
        import torch

        try:
            return next(self.model.parameters()).device
        except (StopIteration, AttributeError):
            return torch.device("cpu")

    def _states(self, ids: Any, mask: Any) -> tuple[Any, Any | None]:
        """(B, T, H) hidden states plus the head, or (B, T, V) logits plus None."""
        if self._split is not None:
            decoder, head = self._split
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            if not self._checked:
                self._check(ids[:1, :CHECK_POSITIONS], mask[:1, :CHECK_POSITIONS])
            if self._split is not None:
                return hidden, head
        return self.model(input_ids=ids, attention_mask=mask).logits, None

    def _check(self, ids: Any, mask: Any) -> None:
        """Compare ``head(decoder(x))`` with the model's logits once, on the first positions of
        the first trace (a few rows of logits only); fall back to logits if they differ."""
        self._checked = True
        decoder, head = self._split
        logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        mine = head(hidden).float()
        scale = 1.0 + float(logits.abs().max())
        if logits.shape != mine.shape or float((logits - mine).abs().max()) > 1e-3 * scale:
            log.info("the model's logits are not lm_head(hidden); scoring from full logits")
            self._split = None

    def score(self, texts: Sequence[str], progress: bool = False) -> list[TraceScore]:
        """One :class:`TraceScore` per text, in order (batches are formed by length)."""
        import torch

        encoded = [encode_for_scoring(self.tokenizer, t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i][0]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="scoring", unit="batch")
        results: list[TraceScore] = [None] * len(texts)  # type: ignore[list-item]
        device = self._device()
        with torch.inference_mode():
            for batch in batches:
                ids, targets, mask = self._tensors([encoded[i][0] for i in batch])
                states, head = self._states(ids.to(device), mask.to(device))
                valid = mask.to(device).bool()
                flat = chunked_scores(
                    states[valid], targets.to(device)[valid], head, self.chunk_size
                )
                flat = flat.double().cpu().numpy()
                parts = np.split(flat, np.cumsum(mask.sum(dim=1).tolist())[:-1])
                for i, part in zip(batch, parts):
                    results[i] = self._trace_score(part, encoded[i][1])
        return results

    def _tensors(self, seqs: list[list[int]]) -> tuple[Any, Any, Any]:
        """Right-padded inputs, targets (inputs shifted left, EOS appended) and attention mask."""
        import torch

        pad, eos = self.tokenizer.pad_token_id or 0, self.tokenizer.eos_token_id
        shape = (len(seqs), max(len(seq) for seq in seqs))
        ids, targets = torch.full(shape, pad), torch.full(shape, pad)
        mask = torch.zeros(shape, dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            targets[row, : len(seq)] = torch.tensor([*seq[1:], eos])
            mask[row, : len(seq)] = 1
        return ids, targets, mask

    def _trace_score(self, token_scores: np.ndarray, members: list[np.ndarray]) -> TraceScore:
        per_event = [token_scores[idx] for idx in members]
        events = np.array([event_score(s, self.alpha) for s in per_event[:-1]])
        return TraceScore(
            events=events, end=event_score(per_event[-1], self.alpha), tokens=per_event
        )


# --- metrics ---------------------------------------------------------------------------------


def best_f1_threshold(labels: Any, scores: Any) -> float:
    """The threshold of the best F1 on the precision-recall curve (predict ``score >= t``)."""
    from sklearn.metrics import precision_recall_curve

    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    if y.sum() == 0:
        return math.nan
    precision, recall, thresholds = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return float(thresholds[int(np.argmax(f1[:-1]))])


def detection_metrics(labels: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 and accuracy at ``threshold`` and at the best-F1 threshold, plus AP
    and ROC-AUC (:func:`lmad.metrics.auc.auc_roc`, the Mann-Whitney probability).

    A score counts as anomalous when ``score >= threshold`` (scikit-learn's PR-curve convention).
    Keys: ``precision recall f1 accuracy threshold best_threshold best_precision best_recall
    best_f1 best_accuracy ap roc_auc n positives``, and for each threshold the share of items it
    flags (``flagged``, ``best_flagged``) and whether that share is at least 95 % (``flags_all``,
    ``best_flags_all``: precision there is about the anomaly rate, see :mod:`~lmad.traces.ranking`).
    AP, ROC-AUC and best-F1 values are NaN without positives.
    """
    from lmad.metrics.auc import auc_pr, auc_roc, labels_and_scores
    from lmad.metrics.point import point_prf
    from lmad.traces.ranking import flagged_share, flags_all

    y, s = labels_and_scores(labels, scores)
    fixed = point_prf(y, (s >= threshold).astype(np.int8))
    out = {k: float(fixed[k]) for k in ("precision", "recall", "f1", "accuracy")}
    out["threshold"] = float(threshold)
    best = best_f1_threshold(y, s)
    out["best_threshold"] = best
    if math.isnan(best):
        out.update(best_precision=math.nan, best_recall=math.nan, best_f1=math.nan)
        out["best_accuracy"] = math.nan
    else:
        at_best = point_prf(y, (s >= best).astype(np.int8))
        for key in ("precision", "recall", "f1", "accuracy"):
            out[f"best_{key}"] = float(at_best[key])
    out["ap"], out["roc_auc"] = auc_pr(y, s), auc_roc(y, s)
    for prefix, at in (("", float(threshold)), ("best_", best)):
        out[f"{prefix}flagged"] = share = flagged_share(s, at)
        out[f"{prefix}flags_all"] = flags_all(share)
    out["n"], out["positives"] = int(y.size), int(y.sum())
    return out


def evaluate(
    trace_labels: Sequence[int],
    event_labels: Sequence[Sequence[int]],
    scores: Sequence[TraceScore],
    threshold: float,
) -> dict[str, dict[str, float]]:
    """Trace- and event-level :func:`detection_metrics` (the end-of-trace score is trace-only).

    Raises:
        DataError: a trace whose event labels do not match its number of scored events.
    """
    if len(trace_labels) != len(scores) or len(event_labels) != len(scores):
        raise DataError(f"{len(scores)} scored traces for {len(trace_labels)} labels")
    for i, (labels, score) in enumerate(zip(event_labels, scores)):
        if len(labels) != len(score.events):
            raise DataError(
                f"trace {i + 1}: {len(labels)} event labels for {len(score.events)} events"
            )
    event_y = np.concatenate([np.asarray(e, dtype=int) for e in event_labels])
    event_s = np.concatenate([s.events for s in scores])
    return {
        "trace": detection_metrics(trace_labels, [s.trace for s in scores], threshold),
        "event": detection_metrics(event_y, event_s, threshold),
    }


# --- a whole evaluation run (eval.py) --------------------------------------------------------

RESULT_COLUMNS = (
    "time", "data", "sample", "model", "adapter", "method", "level", "n", "positives",
    "threshold", "precision", "recall", "f1", "accuracy", "flagged", "flags_all",
    "best_threshold", "best_precision", "best_recall", "best_f1", "best_accuracy", "best_flagged",
    "best_flags_all", "ap", "roc_auc", "scores", "seconds",
)  # fmt: skip
"""Columns of ``data/results/semad/result.csv`` (see ``eval.py --help``)."""
