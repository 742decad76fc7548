"""Batches for SemAD fine-tuning: encoded traces, the padding and packing collators, and
length-grouped batches (``fine_tune_llama3.py --batching packed|grouped|random``).

Random batches pad every trace to the longest of eight drawn at random; on SemAD's training file
only about half of the padded tokens are real. :class:`PackedCollator` (the default) keeps SemAD's
random batches and packs each into one row without padding, with the loss of the padded batch.
:class:`GroupedSampler` orders an epoch so
that consecutive batches hold traces of similar length: a seeded permutation is cut into
megabatches of ``MEGABATCH`` steps, each megabatch is sorted by length and cut into steps, and the
steps of the whole epoch are shuffled (so training still sees the batches in a random order, and a
batch's traces change from epoch to epoch). The order depends only on the seed and the epoch,
never on the global random state, so every process of a distributed run builds the same order
and a run resumed from a checkpoint skips exactly the batches it had trained on (the Trainer
below sets the epoch itself: under several processes, a resumed run's ``set_epoch`` does not
reach the sampler through accelerate's wrappers).

Under several processes (``world`` > 1) one step is ``world`` consecutive batches of
``batch_size``: accelerate hands batch ``i`` to process ``i % world``, so the batches trained at
the same time are of similar length too. The ``len % (batch_size * world)`` traces that make no
whole step are a random set, put last, where the DataLoader drops them (``drop_last``), as it drops
the partial batch of random sampling.

Transformers' own ``train_sampling_strategy="group_by_length"`` (5.x) is not used: its sampler
yields each megabatch's batches from the longest to the shortest, so batch lengths run down in a
saw-tooth through the epoch instead of coming in a random order, and it draws from the global
torch random state, so its order depends on whatever consumed random numbers before the epoch
began (model initialisation, dropout) on every process alike.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmad.io import atomic_write_json

log = logging.getLogger(__name__)

BATCHING = ("packed", "grouped", "random")
"""The layouts of a step's traces (``FinetuneConfig.batching``)."""

MEGABATCH = 50
"""Steps per megabatch: traces are sorted by length within ``MEGABATCH`` steps' worth of them."""


class TraceCollator:
    """Right-pads a batch; ``labels`` = ``input_ids`` with padding set to -100."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = int(pad_id)

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            seq = torch.tensor(feature["input_ids"], dtype=torch.long)
            ids[row, : len(seq)] = seq
            labels[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class PackedCollator:
    """Packs a batch's traces into one row, without padding (``batching="packed"``).

    The traces are concatenated; ``position_ids`` restart at 0 at every trace, and no attention
    mask is passed, from which transformers builds a block-diagonal causal mask (its packed-
    sequence detection, ``masking_utils.find_packed_sequence_indices``): no token attends to
    another trace, and every token sees the positions it has unpacked. The first token of each
    trace is labelled -100, so the last token of one trace is never asked to predict the next
    trace. The loss over a packed row is therefore the loss over the same traces padded (the same
    predictions; the Trainer divides both by the same count of predicted tokens). ``use_cache``
    is off: transformers looks for packed sequences only when no key/value cache is built.
    """

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids, positions, labels = [], [], []
        for feature in features:
            seq = list(feature["input_ids"])
            ids.extend(seq)
            positions.extend(range(len(seq)))
            labels.extend([-100, *seq[1:]])
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "use_cache": False,
        }


def check_packing(model: Any, rows: Sequence[Sequence[int]], pad_id: int) -> None:
    """Refuse packing for a model whose attention does not keep packed traces apart.

    transformers builds the block-diagonal mask from restarting position ids only for models that
    pass them to its mask functions; another model (remote code, an older architecture) would let
    a packed trace attend to the ones before it, silently. Two traces of ``rows`` are run packed
    and padded: the second trace's logits must agree far better (a tenth) with its padded logits
    than they do when it is packed without restarting positions (what leaking looks like).

    Raises:
        ConfigError: the model leaks across packed traces.
    """
    import torch

    from lmad.errors import ConfigError

    pair = [{"input_ids": list(r)} for r in sorted(rows[:8], key=len)[-2:]]
    if len(pair) < 2:
        return
    packed, padded = PackedCollator()(pair), TraceCollator(pad_id)(pair)
    first, second = len(pair[0]["input_ids"]), len(pair[1]["input_ids"])
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(**padded, use_cache=False).logits[1, :second].float()
            together = model(**packed).logits[0, first:].float()
            leaky = {"input_ids": packed["input_ids"], "use_cache": False}
            leaked = model(**leaky).logits[0, first:].float()
    finally:
        model.train(training)
    apart, leak = float((together - alone).abs().max()), float((leaked - alone).abs().max())
    if not apart < 0.1 * leak:
        raise ConfigError(
            f"{type(model).__name__} does not keep packed traces apart (logits differ by "
            f"{apart:.3g} packed, {leak:.3g} when leaking); use --batching grouped or random"
        )


class EncodedTraces:
    """A map-style dataset of encoded traces (what the Trainer's DataLoader samples)."""

    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return {"input_ids": self.rows[index]}

    @property
    def lengths(self) -> list[int]:
        """Tokens per trace, BOS and EOS included (what the collator pads)."""
        return [len(row) for row in self.rows]


def grouped_order(
    lengths: Sequence[int],
    batch_size: int,
    seed: int | Sequence[int],
    world: int = 1,
    megabatch: int = MEGABATCH,
) -> list[int]:
    """One epoch's trace indices, each exactly once, in length-grouped batches of ``batch_size``.

    Every slice ``[k * batch_size * world, (k + 1) * batch_size * world)`` of the leading whole
    steps is one step of similar-length traces; the steps are in a random order, except that the
    step holding the longest trace comes first (out-of-memory shows at once, not hours in). The
    ``len(lengths) % (batch_size * world)`` left over are a random set, at the end.
    """
    if batch_size < 1 or world < 1 or megabatch < 1:
        raise ValueError("batch_size, world and megabatch must be at least 1")
    sizes = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(sizes))
    step = batch_size * world
    keep = len(perm) - len(perm) % step
    steps: list[np.ndarray] = []
    for start in range(0, keep, megabatch * step):
        chunk = perm[start : min(start + megabatch * step, keep)]
        chunk = chunk[np.argsort(-sizes[chunk], kind="stable")]
        steps.extend(chunk.reshape(-1, step))
    order = rng.permutation(len(steps)).tolist()
    if steps:
        longest = max(range(len(steps)), key=lambda s: int(sizes[steps[s]].max()))
        order.remove(longest)
        order.insert(0, longest)
    grouped = [int(i) for s in order for i in steps[s]]
    return grouped + [int(i) for i in perm[keep:]]


class GroupedSampler:
    """The Trainer's train sampler for length-grouped batches (see the module docstring).

    ``set_epoch`` (called by the Trainer and accelerate at every epoch) reshuffles; the order of
    an epoch is ``grouped_order(lengths, batch_size, (seed, epoch), world)``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        world: int = 1,
        megabatch: int = MEGABATCH,
    ) -> None:
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.world = int(world)
        self.megabatch = int(megabatch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        seed = (self.seed, self.epoch)
        order = grouped_order(self.lengths, self.batch_size, seed, self.world, self.megabatch)
        return iter(order)


def padding_share(lengths: Sequence[int], order: Sequence[int], batch_size: int) -> float:
    """The share of padding among the tokens of the full batches of ``order`` (0 = none)."""
    sizes = np.asarray(lengths, dtype=np.int64)
    whole = len(order) - len(order) % batch_size
    if whole == 0:
        return 0.0
    batches = sizes[np.asarray(order[:whole])].reshape(-1, batch_size)
    padded = int(batches.max(axis=1).sum()) * batch_size
    return 1.0 - int(batches.sum()) / padded


def tokens_per_step(lengths: Sequence[int], args: Any) -> float:
    """The mean number of predicted tokens in one optimizer step: what the loss is divided by.

    A trace of ``n`` tokens (BOS and EOS included) has ``n - 1`` predicted ones. A step holds
    ``train_batch_size * gradient_accumulation_steps`` traces per process, and those of every
    process when the Trainer counts tokens across devices (``average_tokens_across_devices``,
    where it also scales the loss by the number of processes). Dividing every step's summed token
    losses by this constant makes an epoch's mean step loss the mean over all its real tokens
    however the traces are batched (random batches' per-batch means come close to it).
    """
    per_trace = (sum(lengths) - len(lengths)) / max(1, len(lengths))
    traces = args.train_batch_size * args.gradient_accumulation_steps
    if args.average_tokens_across_devices and args.world_size > 1:
        traces *= args.world_size
    return float(per_trace * traces)


def note_batching(config: Any, output_dir: Path, last: str | None, main: bool) -> None:
    """Warn when resuming from checkpoint ``last`` with another order of traces than the run that
    wrote it (grouped against random or packed, which draw the same random order); record this
    run's batching (``config`` is a FinetuneConfig) in ``<output_dir>/semad_batching.json``
    (absent: the checkpoints predate it, random batches).
    """
    path = output_dir / "semad_batching.json"
    if last:
        before = json.loads(path.read_text()) if path.is_file() else {}
        if "batching" not in before:  # written before packing existed, or not at all
            before["batching"] = "grouped" if before.get("group_by_length") else "random"
        if (before["batching"] == "grouped") != (config.batching == "grouped"):
            log.warning(
                "%s was trained with %s batches, this run uses %s ones: the rest of the epoch "
                "in progress may repeat some traces and skip others",
                last, before["batching"], config.batching,
            )  # fmt: skip
    if main:
        atomic_write_json(path, {"batching": config.batching})


@functools.cache
def trace_trainer_class() -> type:
    """``transformers.Trainer`` with ``lengths=`` (None: random batches) for grouped batches."""
    from transformers import Trainer

    class TraceTrainer(Trainer):
        """A Trainer whose train sampler is :class:`GroupedSampler` when given lengths."""

        def __init__(self, *args: Any, lengths: Sequence[int] | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.trace_lengths = None if lengths is None else list(lengths)
            self.trace_sampler: GroupedSampler | None = None

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.trace_lengths is None:
                return super()._get_train_sampler(train_dataset)
            args = self.args
            seed = args.data_seed if args.data_seed is not None else args.seed
            self.trace_sampler = GroupedSampler(
                self.trace_lengths,
                args.train_batch_size * args.gradient_accumulation_steps,
                seed=seed,
                world=max(1, args.world_size),
            )
            return self.trace_sampler

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The Trainer divides a step's summed token losses by the step's own count of real
            # tokens (num_items_in_batch). Under grouping that would weigh a token of a batch of
            # short traces several times one of long traces; divide by the data's mean count
            # per step instead (see tokens_per_step).
            grouped = self.trace_lengths is not None and self.args.n_gpu <= 1
            if grouped and num_items_in_batch is not None:
                num_items_in_batch = tokens_per_step(self.trace_lengths, self.args)
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

        def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
            # A run resumed mid-epoch under several processes wraps the sampler in accelerate's
            # SkipBatchSampler > BatchSamplerShard > BatchSampler, through which neither the
            # Trainer's nor accelerate's set_epoch reaches it (accelerate 1.15): set it here.
            if self.trace_sampler is not None:
                self.trace_sampler.set_epoch(kwargs["epoch"] if "epoch" in kwargs else args[1])
            return super()._run_epoch(*args, **kwargs)

    return TraceTrainer
