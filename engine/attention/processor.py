"""The attention processor that gives diffusers' Wan transformer HoloCine's shot structure.

One processor serves both attention layers of every block: it does the stock Wan
projections, q/k RMS norm and RoPE, then routes the attention itself:
- self-attention (`attn1`): dense in "full" mode; the sparse inter-shot pattern in "sparse" mode;
- cross-attention (`attn2`): each shot's video tokens see only their text window
  (global caption + own shot caption + padding); the negative-prompt pass sees everything.
Dense calls go through diffusers' `dispatch_attention_fn`, so `set_attention_backend` keeps working.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import WanAttention, WanTransformer3DModel, _get_qkv_projections

from .context import AttentionCall, ShotAttention, ShotTokenLayout
from .sparse import SPARSE_BACKENDS


def apply_rotary_embedding(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """Wan's interleaved-pair RoPE on (batch, tokens, heads, head_dim), computed as stock Wan does."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


class HoloCineAttnProcessor:
    """Stock Wan attention math with HoloCine's window cross-attention and sparse self-attention."""

    _attention_backend = None  # set by diffusers' set_attention_backend
    _parallel_config = None

    def __init__(self, shot_attention: ShotAttention) -> None:
        self.shot_attention = shot_attention

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if attn.add_k_proj is not None:
            raise NotImplementedError("HoloCine attention supports text-to-video Wan transformers only (no image keys)")
        if attention_mask is not None:
            raise NotImplementedError(
                "HoloCine attention builds its own masks; an explicit attention_mask is not supported"
            )
        is_cross = encoder_hidden_states is not None
        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = apply_rotary_embedding(query, *rotary_emb)
            key = apply_rotary_embedding(key, *rotary_emb)

        parallel = self.shot_attention.parallel
        token_offset = 0
        if parallel is not None:
            if is_cross:  # this rank's query slice over the whole text: only the shot ranges shift
                token_offset = parallel.token_offset(query.shape[1])
            else:  # Ulysses: the whole sequence for this rank's share of the heads
                query, key, value = (parallel.sequence_to_heads(x) for x in (query, key, value))

        call = self.shot_attention.current
        if isinstance(call, tuple):  # a training batch whose items have their own shots
            if len(call) != query.shape[0]:
                raise ValueError(f"{len(call)} per-item attention layouts for a batch of {query.shape[0]}")
            out = torch.cat(
                [
                    self._attend(query[i : i + 1], key[i : i + 1], value[i : i + 1], is_cross, item, token_offset)
                    for i, item in enumerate(call)
                ]
            )
        else:
            out = self._attend(query, key, value, is_cross, call, token_offset)
        if parallel is not None and not is_cross:
            out = parallel.heads_to_sequence(out)

        out = out.flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)

    def _attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        is_cross: bool,
        call: AttentionCall | None,
        token_offset: int = 0,
    ) -> torch.Tensor:
        if call is None:
            return self._dense(query, key, value)
        if is_cross:
            if call.text_windows is None or not self.shot_attention.windows:
                return self._dense(query, key, value)
            return self._window_cross(query, key, value, call.layout, call.text_windows, token_offset)
        if self.shot_attention.mode == "sparse":
            # Without autograd the queries are dead once attended: let the kernel write over them.
            reuse_query = not (torch.is_grad_enabled() and query.requires_grad)
            kernel = SPARSE_BACKENDS[self.shot_attention.sparse_backend]
            layout = call.layout if self.shot_attention.summaries else call.layout.isolated()
            return kernel(query, key, value, layout, out=query if reuse_query else None)
        return self._dense(query, key, value)

    def _dense(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return dispatch_attention_fn(
            query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, backend=self._attention_backend
        )

    def _window_cross(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        layout: ShotTokenLayout,
        text_windows: torch.Tensor,
        token_offset: int = 0,
    ) -> torch.Tensor:
        """Per shot, attend over only the text keys its window allows: exact, and no mask tensor.

        `query` may be a slice of the video tokens starting at `token_offset` (context
        parallelism): each shot's range is shifted by it and clipped to the slice.
        """
        if text_windows.shape[1] != key.shape[1]:
            raise ValueError(f"text windows cover {text_windows.shape[1]} tokens but the text has {key.shape[1]}")
        out = torch.empty_like(query)
        local_tokens = query.shape[1]
        for shot, (shot_start, shot_end) in enumerate(layout.shot_ranges):
            start = min(max(shot_start - token_offset, 0), local_tokens)
            end = min(max(shot_end - token_offset, 0), local_tokens)
            if start == end:
                continue
            visible = text_windows[shot]
            if bool(visible.all()):
                shot_key, shot_value = key, value
            else:
                index = visible.nonzero().squeeze(1).to(key.device)
                shot_key, shot_value = key.index_select(1, index), value.index_select(1, index)
            out[:, start:end] = self._dense(query[:, start:end], shot_key, shot_value)
        return out


def install_shot_attention(transformer: WanTransformer3DModel, shot_attention: ShotAttention) -> None:
    """Route every attention layer of `transformer` through a HoloCine processor bound to `shot_attention`."""
    transformer.set_attn_processor(HoloCineAttnProcessor(shot_attention))
