"""The per-forward shot layout that HoloCine's attention processors read.

diffusers' Wan transformer passes no attention mask or kwargs to its processors, so the
shot structure of the call in flight has to reach them another way. `ShotAttention` is
that one place: the pipeline opens a `scope` around each transformer call, and every
installed processor reads `ShotAttention.current`. Outside a scope the processors behave
exactly like stock Wan attention.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

import torch

AttentionMode = Literal["full", "sparse"]
ATTENTION_MODES: tuple[AttentionMode, ...] = ("full", "sparse")


@dataclass(frozen=True)
class ShotTokenLayout:
    """Shots as contiguous ranges of the (frame, height, width)-ordered video token sequence."""

    shot_ranges: tuple[tuple[int, int], ...]
    tokens_per_frame: int
    summaries: bool = True  # False: the "no summaries" ablation, where shots never see each other

    def __post_init__(self) -> None:
        expected = 0
        for start, end in self.shot_ranges:
            if start != expected or end <= start or (end - start) % self.tokens_per_frame:
                raise ValueError(f"shot token ranges must tile the sequence in whole frames: {self.shot_ranges}")
            expected = end

    @property
    def num_tokens(self) -> int:
        return self.shot_ranges[-1][1]

    @property
    def summary_ranges(self) -> tuple[tuple[int, int], ...]:
        """Each shot's first latent frame: the only tokens other shots may see in sparse mode."""
        if not self.summaries:
            return ()
        return tuple((start, start + self.tokens_per_frame) for start, _ in self.shot_ranges)

    def isolated(self) -> ShotTokenLayout:
        return replace(self, summaries=False)


@dataclass(frozen=True)
class AttentionCall:
    """What one transformer forward needs: the token layout, and the text windows (None = full)."""

    layout: ShotTokenLayout
    text_windows: torch.Tensor | None  # (num_shots, text_len) bool, or None for the negative prompt


class ShotAttention:
    """Settings of a transformer's HoloCine attention plus the layout of the call in flight."""

    def __init__(self, mode: AttentionMode, sparse_backend: str) -> None:
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention mode must be one of {ATTENTION_MODES}, got {mode!r}")
        self.mode: AttentionMode = mode
        self.sparse_backend = sparse_backend
        # The paper's ablations, each False only for a model trained that way:
        self.summaries = True  # "no summaries": shots never see each other's first frame
        self.windows = True  # "no window cross-attention": every shot reads every caption
        # One call for the whole batch (rendering), or one per batch item (training on mixed scenes).
        self.current: AttentionCall | tuple[AttentionCall, ...] | None = None
        # Ulysses context parallelism (engine.parallel.UlyssesGroup): None = this process has the whole sequence.
        self.parallel = None

    @contextmanager
    def scope(self, layout: ShotTokenLayout, text_windows: torch.Tensor | None) -> Iterator[None]:
        if text_windows is not None and text_windows.shape[0] != len(layout.shot_ranges):
            raise ValueError(
                f"{text_windows.shape[0]} text windows for {len(layout.shot_ranges)} shots: "
                "the prompt's shot captions must match the shot layout"
            )
        previous, self.current = self.current, AttentionCall(layout, text_windows)
        try:
            yield
        finally:
            self.current = previous

    @contextmanager
    def scope_per_item(self, calls: Sequence[AttentionCall]) -> Iterator[None]:
        """Like `scope`, but batch item i has its own layout and text windows `calls[i]`."""
        for call in calls:
            if call.text_windows is not None and call.text_windows.shape[0] != len(call.layout.shot_ranges):
                raise ValueError("each item's text windows must match its shot layout")
        previous, self.current = self.current, tuple(calls)
        try:
            yield
        finally:
            self.current = previous
