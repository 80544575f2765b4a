"""Prompt tokenization and the token windows of HoloCine's window cross-attention.

The whole scene prompt is encoded in ONE umT5 pass (shot tokens see the whole prompt);
what separates shots is only which text tokens each shot's video tokens may attend to.
This module finds those token ranges from the fast tokenizer's character offsets and
builds the exact visibility rule the released checkpoints were run with, including its
one-token-past quirk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.pipelines.wan.pipeline_wan import prompt_clean

from .errors import SceneValidationError
from .scene import GLOBAL_TAG, PER_SHOT_TAG, SHOT_CUT_TAG

MAX_TEXT_TOKENS = 512


@dataclass(frozen=True)
class TokenizedPrompt:
    """A cleaned prompt as umT5 input: ids and mask padded to `max_length`, offsets of real tokens."""

    text: str
    input_ids: torch.Tensor  # (1, max_length) long
    attention_mask: torch.Tensor  # (1, max_length) long
    offsets: tuple[tuple[int, int], ...]  # one per real token (special tokens are (0, 0))

    @property
    def num_tokens(self) -> int:
        return len(self.offsets)

    @property
    def max_length(self) -> int:
        return int(self.input_ids.shape[1])


def count_tokens(tokenizer, prompt: str) -> int:
    """Tokens umT5 would see for `prompt` (cleaned, EOS included), however many that is."""
    return len(tokenizer(prompt_clean(prompt), add_special_tokens=True, truncation=False)["input_ids"])


def tokenize_prompt(
    tokenizer, prompt: str, field: str = "prompt", max_length: int = MAX_TEXT_TOKENS
) -> TokenizedPrompt:
    """Clean and tokenize like diffusers' Wan pipeline, but refuse instead of truncating."""
    text = prompt_clean(prompt)
    encoded = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True, truncation=False)
    count = len(encoded["input_ids"])
    if count > max_length:
        raise SceneValidationError(
            field,
            f"is {count} tokens long but the text encoder takes at most {max_length}; "
            f"shorten it by {count - max_length} tokens",
        )
    padded = tokenizer(
        text,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    return TokenizedPrompt(
        text=text,
        input_ids=padded["input_ids"],
        attention_mask=padded["attention_mask"],
        offsets=tuple((int(a), int(b)) for a, b in encoded["offset_mapping"]),
    )


@dataclass(frozen=True)
class PromptSpans:
    """Token ranges [start, end) of the global caption and of each shot caption."""

    global_range: tuple[int, int]
    shot_ranges: tuple[tuple[int, int], ...]

    @property
    def num_shots(self) -> int:
        return len(self.shot_ranges)


def character_spans(text: str) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Character spans of the global caption and the shots in a cleaned prompt.

    Each `[shot cut]` marker belongs to the shot BEFORE it, as upstream assigns it.
    """
    global_start = text.find(GLOBAL_TAG)
    per_shot_start = text.find(PER_SHOT_TAG)
    if global_start < 0 or per_shot_start < global_start:
        raise SceneValidationError("prompt", f"must contain {GLOBAL_TAG} followed by {PER_SHOT_TAG}")
    boundaries = [per_shot_start]
    search_from = per_shot_start
    while (marker := text.find(SHOT_CUT_TAG, search_from)) >= 0:
        boundaries.append(marker + len(SHOT_CUT_TAG))
        search_from = marker + len(SHOT_CUT_TAG)
    boundaries.append(len(text))
    shots = list(zip(boundaries[:-1], boundaries[1:]))
    return (global_start, per_shot_start), shots


def prompt_spans(tokenized: TokenizedPrompt, num_shots: int) -> PromptSpans:
    """Assign every real token to the first character span it overlaps; special tokens to none."""
    global_chars, shot_chars = character_spans(tokenized.text)
    if len(shot_chars) != num_shots:
        raise SceneValidationError("prompt", f"has {len(shot_chars)} shot captions but the scene has {num_shots} shots")
    spans = [global_chars, *shot_chars]
    members: list[list[int]] = [[] for _ in spans]
    for index, (begin, end) in enumerate(tokenized.offsets):
        if begin == end:
            continue
        for span_index, (span_begin, span_end) in enumerate(spans):
            if begin < span_end and end > span_begin:
                members[span_index].append(index)
                break
    ranges = []
    for span_index, tokens in enumerate(members):
        if not tokens:
            name = "global caption" if span_index == 0 else f"shot {span_index}"
            raise SceneValidationError("prompt", f"the {name} has no tokens")
        ranges.append((min(tokens), max(tokens) + 1))
    return PromptSpans(global_range=ranges[0], shot_ranges=tuple(ranges[1:]))


def window_visibility(spans: PromptSpans, max_length: int = MAX_TEXT_TOKENS) -> torch.Tensor:
    """(num_shots, max_length) bool: which text tokens each shot's video tokens may attend to.

    Upstream's exact rule: a range [start, end) is applied as `start : end + 1`, so one
    token past each range is visible too, and every position from the largest range end
    + 1 on (the zero padding) is visible to all shots.
    """
    visible = torch.zeros(spans.num_shots, max_length, dtype=torch.bool)
    padding_start = max(end for _, end in (spans.global_range, *spans.shot_ranges)) + 1
    g_start, g_end = spans.global_range
    for shot, (s_start, s_end) in enumerate(spans.shot_ranges):
        visible[shot, g_start : g_end + 1] = True
        visible[shot, s_start : s_end + 1] = True
        visible[shot, padding_start:] = True
    return visible
