"""SemAD scoring: token score formula, event segmentation, alpha^k weights, trace max, chunking,
metrics and the n-gram baseline, on hand-checkable models and tokenizers built offline."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lmad.errors import DataError  # noqa: E402
from lmad.traces.ngram import NGramModel  # noqa: E402
from lmad.traces.scoring import (  # noqa: E402
    TraceScore,
    TraceScorer,
    best_f1_threshold,
    chunked_scores,
    detection_metrics,
    encode_for_scoring,
    evaluate,
    event_members,
    event_score,
    event_spans,
    full_softmax_scores,
    scores_from_logits,
    weighted_score,
)
from tests.conftest import SHARED_DATA  # noqa: E402

ALPHA, THRESHOLD = 0.6, 0.9  # SemAD's token weight decay and fixed threshold
BATCH_SIZE, CHUNK_SIZE = 8, 64  # eval.py's

# --- offline tokenizers and models, also used by test_finetune.py ----------------------------


def word_tokenizer(words: list[str]):
    """A fast word-level tokenizer: ``<s>``=0, ``</s>``=1, ``<unk>``=2, then ``words``.

    Pre-tokenisation splits words from punctuation (``"check,"`` -> ``check`` ``,``), without
    spaces in the tokens, so offsets are easy to check by hand.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def bpe_tokenizer(texts: list[str], vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on ``texts`` (tokens carry their leading space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_llama(vocab_size: int, seed: int = 0, hidden: int = 64):
    """A random 2-layer Llama (q_proj, v_proj, ...) with BOS 0 and EOS 1."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


class BigramLM(torch.nn.Module):
    """A causal LM whose next-token logits depend only on the current token: ``table[id]``."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return SimpleNamespace(logits=self.table[input_ids])


def manual_token_score(probs: np.ndarray, target: int) -> float:
    """Σ_v p_v log p_v − log p(target), straight from the definition."""
    return float(np.sum(probs * np.log(probs)) - np.log(probs[target]))


# --- token score ------------------------------------------------------------------------------


def test_token_score_formula_on_a_hand_computed_distribution():
    p = np.array([0.4, 0.3, 0.1, 0.1, 0.05, 0.05])
    entropy = -(0.4 * math.log(0.4) + 0.3 * math.log(0.3) + 0.2 * math.log(0.1))
    entropy -= 0.1 * math.log(0.05)
    logits = torch.tensor(np.log(p) + 3.0, dtype=torch.float32)[None].repeat(2, 1)  # shift-free
    got = scores_from_logits(logits, torch.tensor([1, 4])).numpy()
    assert got[0] == pytest.approx(-math.log(0.3) - entropy, abs=1e-6)
    assert got[1] == pytest.approx(-math.log(0.05) - entropy, abs=1e-6)
    # a calibrated model scores 0 on average: E_y[s] = H - H
    assert float((p * np.array([manual_token_score(p, y) for y in range(6)])).sum()) == (
        pytest.approx(0.0, abs=1e-12)
    )


def test_chunked_and_full_softmax_agree_for_every_chunk_size():
    torch.manual_seed(1)
    hidden = torch.randn(37, 16)
    head = torch.nn.Linear(16, 300, bias=False)
    targets = torch.randint(0, 300, (37,))
    with torch.no_grad():
        full = full_softmax_scores(head(hidden)[None], targets[None])[0]
        for chunk in (1, 5, 64):
            assert torch.allclose(chunked_scores(hidden, targets, head, chunk), full, atol=1e-5)
        assert torch.allclose(chunked_scores(head(hidden), targets, None, 8), full, atol=1e-5)


# --- event segmentation ------------------------------------------------------------------------


def test_event_spans_split_only_on_the_separator():
    text = "check, approve claim , pay , a,b"
    assert [text[s:e] for s, e in event_spans(text)] == ["check, approve claim", "pay", "a,b"]


def test_segmentation_with_commas_multi_and_single_token_names():
    text = "check, approve claim , pay , send letter to customer"
    tok = word_tokenizer(text.replace(",", " , ").split())
    ids, members = encode_for_scoring(tok, text)
    words = tok.convert_ids_to_tokens(ids[1:])
    assert ids[0] == tok.bos_token_id
    assert words == ["check", ",", "approve", "claim", ",", "pay", ",", "send", "letter", "to",
                     "customer"]  # fmt: skip
    # the comma inside "check, approve claim" belongs to it; separator commas to nothing
    assert [m.tolist() for m in members] == [[0, 1, 2, 3], [5], [7, 8, 9, 10], [11]]
    assert members[-1].tolist() == [len(ids) - 1]  # the EOS target, after the last token


def test_segmentation_with_byte_level_tokens_that_carry_the_space():
    texts = ["receive order , check stock , ship goods", "receive order , ship goods"]
    tok = bpe_tokenizer(texts * 5, vocab_size=280)
    _, members = encode_for_scoring(tok, texts[0])
    enc = tok(texts[0], add_special_tokens=False, return_offsets_mapping=True)
    spans = event_spans(texts[0])
    for event, idx in enumerate(members[:-1]):
        covered = "".join(texts[0][a:b] for a, b in (enc["offset_mapping"][i] for i in idx))
        start, end = spans[event]
        assert covered.strip() == texts[0][start:end]  # " check" keeps its space, nothing else
    assert len(members) == 4


def test_tokens_straddling_a_separator_go_to_the_bigger_overlap():
    spans = event_spans("ab , cd")  # (0, 2), (5, 7)
    # " ," belongs to nothing; "b , c" overlaps both by one: the earlier event wins;
    # "b , cd" overlaps "cd" more
    members = event_members([(0, 2), (2, 4), (4, 7)], spans)
    assert [m.tolist() for m in members] == [[0], [2]]
    members = event_members([(0, 1), (1, 6), (6, 7)], spans)
    assert [m.tolist() for m in members] == [[0, 1], [2]]
    members = event_members([(0, 1), (1, 7)], spans)
    assert [m.tolist() for m in members] == [[0], [1]]
    # a token spanning both events whole: the second event takes the tokens that overlap it
    members = event_members([(0, 7)], spans)
    assert [m.tolist() for m in members] == [[0], [0]]


def test_empty_trace_and_empty_activity_are_data_errors():
    tok = word_tokenizer(["a", "b"])
    with pytest.raises(DataError, match="empty"):
        encode_for_scoring(tok, "  ")
    with pytest.raises(DataError, match="no tokens"):
        event_members([(0, 1)], event_spans("a , "))


# --- event and trace scores ---------------------------------------------------------------------


def test_alpha_weights_on_a_hand_case():
    # weights 1, 0.6, 0.36: (2 + 0.6 + 1.44) / 1.96
    assert weighted_score([2.0, 1.0, 4.0], 0.6) == pytest.approx(4.04 / 1.96)
    assert event_score([2.0, 1.0, 4.0], ALPHA) == pytest.approx(1 / (1 + math.exp(-4.04 / 1.96)))
    assert event_score([3.0], ALPHA) == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert weighted_score([1.0, 0.0], 0.5) == pytest.approx(1 / 1.5)  # first token weighs most
    assert math.isnan(weighted_score([], ALPHA))


def bigram_case():
    """Word tokenizer and a bigram model with known distributions over 7 tokens."""
    words = ["a", "b", "c", "d"]
    tok = word_tokenizer([*words, ","])  # ids: <s>0 </s>1 <unk>2 a3 b4 c5 d6 ,7
    rng = np.random.default_rng(3)
    table = rng.normal(0, 1.5, size=(8, 8))
    table[6, 1] = -8.0  # after "d" the end is very unlikely
    return tok, table


def expected_scores(tok, table: np.ndarray, text: str, alpha: float = ALPHA):
    """Event scores, then the end score, computed from the definition token by token."""
    probs = np.exp(table) / np.exp(table).sum(axis=1, keepdims=True)
    ids, members = encode_for_scoring(tok, text)
    targets = [*ids[1:], tok.eos_token_id]
    s = np.array([manual_token_score(probs[i], t) for i, t in zip(ids, targets)])
    weights = [alpha ** np.arange(len(m)) for m in members]
    means = [float((w * s[m]).sum() / w.sum()) for w, m in zip(weights, members)]
    return [1 / (1 + math.exp(-x)) for x in means]


def test_scorer_matches_the_definition_on_a_bigram_model():
    tok, table = bigram_case()
    scorer = TraceScorer(BigramLM(table), tok, ALPHA, batch_size=2, chunk_size=3)
    assert not scorer.uses_hidden_states  # no lm_head: scored from the logits
    texts = ["a b , c , d", "c , a , b b a", "d , d"]
    for text, got in zip(texts, scorer.score(texts)):
        want = expected_scores(tok, table, text)
        assert got.events == pytest.approx(want[:-1], abs=1e-6)
        assert got.end == pytest.approx(want[-1], abs=1e-6)
        assert got.trace == pytest.approx(max(want), abs=1e-6)
    # "a b": two tokens of one event, hand-weighted 1 and 0.6
    first = scorer.score(["a b , c"])[0]
    s0, s1 = first.tokens[0]
    assert first.events[0] == pytest.approx(event_score([s0, s1], ALPHA))
    assert first.events[0] == pytest.approx(1 / (1 + math.exp(-(s0 + 0.6 * s1) / 1.6)))


def test_trace_score_is_the_max_including_the_end_of_trace():
    tok, table = bigram_case()
    scorer = TraceScorer(BigramLM(table), tok, ALPHA, BATCH_SIZE, CHUNK_SIZE)
    ends_on_d, ends_on_a = scorer.score(["a , b , d", "d , b , a"])
    # p(EOS | d) is tiny: the end-of-trace pseudo-event is the max and is not an event
    assert len(ends_on_d.events) == 3
    assert ends_on_d.end > ends_on_d.events.max()
    assert ends_on_d.trace == ends_on_d.end
    assert ends_on_a.trace == max(ends_on_a.events.max(), ends_on_a.end)
    assert TraceScore(np.array([0.2, 0.7]), 0.5, []).trace == 0.7


def test_tiny_llama_chunked_hidden_path_equals_full_logits():
    texts = ["receive order , check, approve credit , ship goods", "receive order , ship goods"]
    tok = bpe_tokenizer(texts * 5, vocab_size=300)
    model = tiny_llama(len(tok))
    hidden = TraceScorer(model, tok, ALPHA, batch_size=2, chunk_size=4)
    logits = TraceScorer(model, tok, ALPHA, batch_size=1, chunk_size=1000, split_head=False)
    a, b = hidden.score(texts), logits.score(texts)
    assert hidden.uses_hidden_states and not logits.uses_hidden_states
    for x, y in zip(a, b):
        assert len(x.events) == 3 - (x is a[1])
        np.testing.assert_allclose(np.concatenate(x.tokens), np.concatenate(y.tokens), atol=1e-5)
    # and the original's full softmax over (B, T, V) at once
    ids, members = encode_for_scoring(tok, texts[0])
    with torch.no_grad():
        full = full_softmax_scores(model(torch.tensor([ids])).logits, torch.tensor([[*ids[1:], 1]]))
    np.testing.assert_allclose(
        np.concatenate(a[0].tokens), np.concatenate([full[0].numpy()[m] for m in members]),
        atol=1e-5,
    )  # fmt: skip


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_at_fixed_and_best_threshold_on_a_hand_case():
    labels = [0, 0, 1, 1, 0, 1]
    scores = [0.1, 0.95, 0.92, 0.5, 0.3, 0.99]
    m = detection_metrics(labels, scores, threshold=THRESHOLD)
    # >= 0.9 predicts [0 1 1 0 0 1]: tp 2, fp 1, fn 1, tn 2
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert m["accuracy"] == pytest.approx(4 / 6)
    # >= 0.5 gives tp 3, fp 1: F1 = 6/7, the best
    assert best_f1_threshold(labels, scores) == pytest.approx(0.5)
    assert m["best_f1"] == pytest.approx(6 / 7)
    assert (m["best_precision"], m["best_recall"], m["best_accuracy"]) == pytest.approx(
        (0.75, 1.0, 5 / 6)
    )
    assert m["ap"] == pytest.approx(1 / 3 + (1 / 3) * (2 / 3) + (1 / 3) * 0.75)
    assert (m["n"], m["positives"]) == (6, 3)
    none = detection_metrics([0, 0], [0.2, 0.95], THRESHOLD)
    assert math.isnan(none["ap"]) and math.isnan(none["best_f1"]) and none["accuracy"] == 0.5


def test_event_level_leaves_the_end_of_trace_out():
    scores = [
        TraceScore(np.array([0.1, 0.95]), 0.99, []),
        TraceScore(np.array([0.2]), 0.3, []),
    ]
    result = evaluate([1, 0], [[0, 1], [0]], scores, threshold=THRESHOLD)
    assert result["trace"]["n"] == 2 and result["trace"]["f1"] == 1.0
    assert result["event"]["n"] == 3 and result["event"]["f1"] == 1.0
    with pytest.raises(DataError, match="event labels"):
        evaluate([1, 0], [[0, 1, 0], [0]], scores, THRESHOLD)


# --- n-gram baseline -------------------------------------------------------------------------------


def test_ngram_probabilities_and_scores_by_hand():
    model = NGramModel(order=2, k=1.0, weights=[0.0, 1.0]).fit([["a", "b"], ["a", "b"], ["a"]])
    # vocabulary a, b, </t>, <unk>; after "a": b twice, </t> once -> (2+1)/(3+4), (1+1)/7
    probs = model.distribution(["a"])
    assert probs.sum() == pytest.approx(1.0)
    assert probs[model.index["b"]] == pytest.approx(3 / 7)
    assert probs[model.index["</t>"]] == pytest.approx(2 / 7)
    s = model.token_scores(["a", "b"])
    assert s[1] == pytest.approx(manual_token_score(probs, model.index["b"]))
    scored = model.score([["a", "b"], ["a", "zzz"]])
    assert len(scored[0].events) == 2
    assert scored[1].events[1] > scored[0].events[1]  # unknown activity is more surprising
    assert scored[1].trace == max(scored[1].events.max(), scored[1].end)


def test_ngram_interpolation_is_a_distribution_and_checks_input():
    model = NGramModel(3).fit([["x", "y", "z"], ["x", "z"]])
    for history in ([], ["x"], ["x", "y"], ["q", "x"]):
        assert model.distribution(history).sum() == pytest.approx(1.0)
    with pytest.raises(DataError):
        NGramModel(order=3, weights=[1.0])
    with pytest.raises(DataError):
        NGramModel(3).fit([])


@pytest.mark.integration
def test_segmentation_matches_evelabel_on_the_semad_test_file():
    path = SHARED_DATA / "semad" / "test_data.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    from lmad.traces.log_io import read_traces

    traces = read_traces(path)
    tok = bpe_tokenizer([t.text for t in traces[::7]], vocab_size=2000)
    for trace in traces:
        _, members = encode_for_scoring(tok, trace.text)
        assert len(members) - 1 == len(trace.event_labels), trace.text
