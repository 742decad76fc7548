"""The three TAMA prompts (arXiv 2411.02465, Sec. 3), for images and for text, as chat requests.

1. Reference learning: normal windows of the same channel; the model describes the normal pattern.
2. Analysis: one window; the model lists anomalous intervals with confidence, type, explanation.
3. Self-reflection: two zoomed views of the window and the first answer; the model confirms or
   corrects it.

Our wording follows TAMA's Background / Task / Target structure. The axes are described the right
way round (TAMA's image prompts had them swapped): x is the position in the window, y the value.
"""

from __future__ import annotations

import json

import numpy as np

from lmad.llm.messages import ChatRequest, GenerationParams, ImagePart, Message, TextPart
from lmad.llm.messages import assistant as assistant_turn
from lmad.llm.messages import system as system_turn
from lmad.series.answer_schema import answer_schema, reference_schema
from lmad.series.answers import ANSWER_SCHEMA_TEXT
from lmad.series.text import serialize, serialize_index_value

SYSTEM = "You are an expert in time-series anomaly detection. You answer in JSON."
MAX_TEXT_INTERVALS = 5


def background(modality: str, window_size: int, x_ticks: int | None, text_form: str) -> str:
    if modality == "image":
        view = (
            f"I drew each window of {window_size} points as a line plot.\n"
            f"- The horizontal (x) axis is the position of a point in the window, from 0 to "
            f"{window_size}; a labelled tick marks every {x_ticks} points.\n"
            "- The vertical (y) axis is the value of the series (standardised: 0 is the mean of "
            "the normal data and 1 its standard deviation)."
        )
    elif text_form == "index_value":
        view = (
            f"I wrote each window of {window_size} points as text: 'index:value' pairs separated "
            "by commas; the index is the position of the point in the window, starting at 0, and "
            "the value is standardised (0 is the mean of the normal data, 1 its standard deviation)."
        )
    else:
        view = (
            f"I wrote each window of {window_size} points as text: every value multiplied by 1000 "
            "and rounded, the characters of each number separated by spaces, and the numbers "
            "separated by commas. The k-th number (counting from 0) is the point at position k."
        )
    return (
        "<Background>\n"
        "I have a long time series with some anomalies. I cut it into overlapping windows. "
        f"{view}\n"
        "The work has two parts. Task 1: learn what normal data look like from normal reference "
        "windows. Task 2: find the anomalies in other windows of the same channel.\n"
    )


def reference_prompt(n: int, intro: str) -> str:
    return (
        f"{intro}\n<Task>\nThis is Task 1. Below are {n} normal reference windows of the same "
        "channel, taken at different positions, so a plot may start or end in the middle of a "
        "pattern: those cuts are not anomalies.\n\n<Target>\n"
        "Describe the normal pattern in 300-400 words: period, stability, trend, peaks, troughs "
        "and any other important feature. Answer in JSON: "
        '{"normal_pattern": "<your description>"}'
    )


def analysis_prompt(intro: str, window_size: int, modality: str, references: int) -> str:
    learned = (
        "In Task 1 you described the normal pattern; use it.\n"
        if references
        else "There are no reference windows: judge the window by itself.\n"
    )
    limit = f" List at most {MAX_TEXT_INTERVALS} intervals." if modality == "text" else ""
    reading = (
        "Read positions off the x-axis tick labels as precisely as you can."
        if modality == "image"
        else "Count positions from 0."
    )
    return (
        f"{intro}\n<Task>\nThis is Task 2. {learned}Find every anomaly in the window below. "
        "A window may be normal. Its first and last points may cut through a pattern: that is "
        f"not an anomaly. {reading}{limit}\n\n<Target>\n"
        f"The window has {window_size} points. Answer in JSON with this schema:\n"
        f"{ANSWER_SCHEMA_TEXT}"
    )


def reflection_prompt(first_answer: dict, window_size: int, views: list[tuple[int, int]]) -> str:
    shown = " and ".join(f"positions {a} to {b}" for a, b in views)
    return (
        "<Task>\nSelf-reflection. Below are two zoomed views of the same window "
        f"({shown}); the x-axis tick labels are positions in the window, as before.\n"
        f"Your first answer was:\n{json.dumps(first_answer)}\n"
        "Check every interval against the zoomed views and the normal pattern: keep it, correct "
        "its start, end, confidence or type, or remove it if it is normal; add an anomaly you "
        "missed. Say why in the description.\n\n<Target>\n"
        f"The window has {window_size} points. Answer in JSON with the same schema:\n"
        f"{ANSWER_SCHEMA_TEXT}"
    )


class PromptBuilder:
    """Builds the chat requests of one run (one modality, one window size)."""

    def __init__(
        self,
        modality: str,
        window_size: int,
        x_ticks: int | None,
        text_form: str,
        params: GenerationParams | None = None,
    ) -> None:
        """``x_ticks`` and ``text_form`` are what make_dataset drew and wrote (the meta.json)."""
        self.modality = modality
        self.window_size = window_size
        self.text_form = text_form
        self.params = params or GenerationParams()
        self.intro = background(modality, window_size, x_ticks, text_form)

    def window_part(self, values: np.ndarray, png: bytes | None = None) -> ImagePart | TextPart:
        if self.modality == "image":
            return ImagePart(png, "high")
        return TextPart(serialize(np.asarray(values, dtype=np.float64), self.text_form))

    def reference_request(self, parts: list[ImagePart | TextPart]) -> ChatRequest:
        message = self._user(reference_prompt(len(parts), self.intro), parts, "Reference")
        return ChatRequest(
            (system_turn(SYSTEM), message), self.params, "reference", reference_schema()
        )

    def history(self, reference_parts: list, reference_answer: str | None) -> tuple[Message, ...]:
        """The conversation every window starts from: system, references and their description."""
        if not reference_parts:
            return (system_turn(SYSTEM),)
        request = self.reference_request(reference_parts)
        return (*request.messages, assistant_turn(reference_answer or ""))

    def analysis_request(self, history: tuple[Message, ...], part) -> ChatRequest:
        n_refs = sum(1 for m in history if m.role == "user")
        text = analysis_prompt(self.intro, self.window_size, self.modality, n_refs)
        message = self._user(text, [part], "Window")
        return ChatRequest(
            (*history, message), self.params, "analysis", answer_schema(self.window_size)
        )

    def reflection_request(
        self, analysis: ChatRequest, first_answer: dict, values: np.ndarray, zoom_pngs: list[bytes]
    ) -> ChatRequest:
        from lmad.series.render import zoom_bounds

        views = zoom_bounds(len(values))
        text = reflection_prompt(first_answer, self.window_size, views)
        if self.modality == "image":
            parts = [ImagePart(png, "high") for png in zoom_pngs]
        else:
            parts = [
                TextPart(f"Positions {a} to {b}: " + serialize_index_value(values[a:b], start=a))
                for a, b in views
            ]
        message = Message("user", (TextPart(text), *parts))
        messages = (*analysis.messages, assistant_turn(json.dumps(first_answer)), message)
        return ChatRequest(messages, self.params, "reflection", answer_schema(self.window_size))

    def _user(self, text: str, parts: list, label: str) -> Message:
        content: list = [TextPart(text)]
        for i, part in enumerate(parts):
            if self.modality == "text":
                content.append(TextPart(f"{label} {i + 1}:"))
            content.append(part)
        return Message("user", tuple(content))
