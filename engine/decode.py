"""Shot-by-shot streaming decode of a Wan latent video.

`AutoencoderKLWan.decode` returns nothing until the whole video is decoded, which for a
multi-shot scene means minutes of blank UI. The Wan decoder is causal in time: diffusers
feeds it one latent frame at a time and carries a per-convolution feature cache from frame
to frame. Replaying exactly that loop, but pausing after each shot's latent frames and
keeping the caches alive, yields every shot as soon as it exists while the concatenation of
all shots stays bit-identical to `vae.decode(z).sample` (untiled and tiled alike).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

PIXEL_FRAMES_PER_LATENT = 4
"""Wan VAE temporal factor: latent frame 0 decodes to 1 frame, every later one to 4."""


def pixel_frame_count(latent_start: int, latent_end: int) -> int:
    """Number of pixel frames the latent frames [latent_start, latent_end) decode to."""
    if not 0 <= latent_start < latent_end:
        raise ValueError(f"latent range [{latent_start}, {latent_end}) is empty or negative; need 0 <= start < end")
    first = 1 if latent_start == 0 else 0
    return first + PIXEL_FRAMES_PER_LATENT * (latent_end - latent_start - first)


def decode_latent_ranges(
    vae: AutoencoderKLWan, z: torch.Tensor, latent_ranges: Sequence[tuple[int, int]]
) -> Iterator[torch.Tensor]:
    """Decode `z` range by range, yielding each range's pixels as soon as it is done.

    `z` is the de-normalised latent (B, z_dim, F, h, w) that `vae.decode` takes;
    `latent_ranges` are contiguous [start, end) latent-frame ranges covering 0..F in order.
    Each yielded tensor is (B, C, pixel_frame_count(start, end), H, W) in [-1, 1], and
    `torch.cat(list(...), dim=2)` equals `vae.decode(z).sample` bit for bit.

    Inputs are validated here, before the first frame is decoded, so a bad layout fails at
    the call rather than at the first `next()`. Stop early with `.close()` (or by
    exhausting the iterator) to release the feature caches promptly.
    """
    _validate(vae, z, latent_ranges)
    return _stream(vae, z, [(int(s), int(e)) for s, e in latent_ranges])


def _validate(vae: AutoencoderKLWan, z: torch.Tensor, ranges: Sequence[tuple[int, int]]) -> None:
    """Reject latents and range layouts that could not reproduce `vae.decode` exactly."""
    if z.dim() != 5 or z.shape[1] != vae.config.z_dim:
        raise ValueError(f"z must be (B, {vae.config.z_dim}, F, h, w) for this VAE, got shape {tuple(z.shape)}")
    num_frames = z.shape[2]
    if len(ranges) == 0:
        raise ValueError(f"latent_ranges is empty; give at least one range covering 0..{num_frames}")
    expected_start = 0
    for index, (start, end) in enumerate(ranges):
        if start != expected_start:
            raise ValueError(
                f"latent_ranges[{index}] = ({start}, {end}) starts at {start}, expected "
                f"{expected_start}: ranges must be contiguous and in time order from 0"
            )
        if end <= start:
            raise ValueError(f"latent_ranges[{index}] = ({start}, {end}) is empty; need end > start")
        expected_start = end
    if expected_start != num_frames:
        raise ValueError(
            f"latent_ranges end at latent frame {expected_start} but z has {num_frames} latent "
            "frames; the last range must end at F"
        )


@dataclass
class _CausalStream:
    """One causal decoder state: the latent it reads and its per-conv feature cache.

    diffusers keeps a single cache on the VAE and rebuilds it per tile; streaming needs one
    cache per spatial tile (and per batch slice when slicing) alive at the same time.
    `post_quant_per_frame` mirrors where diffusers applies post_quant_conv: to the whole
    latent untiled, to each tile's single frame tiled; a backend may pick different conv
    kernels for the two shapes, so only the matching choice is guaranteed bit-identical.
    """

    latent: torch.Tensor
    cache: list[object]
    post_quant_per_frame: bool

    def decode(self, vae: AutoencoderKLWan, start: int, end: int) -> torch.Tensor:
        """Decode latent frames [start, end), continuing from the frames before `start`."""
        frames = []
        for k in range(start, end):
            frame = self.latent[:, :, k : k + 1]
            if self.post_quant_per_frame:
                frame = vae.post_quant_conv(frame)
            frames.append(vae.decoder(frame, feat_cache=self.cache, feat_idx=[0], first_chunk=(k == 0)))
        return torch.cat(frames, dim=2)


@torch.no_grad()
def _stream(vae: AutoencoderKLWan, z: torch.Tensor, ranges: list[tuple[int, int]]) -> Iterator[torch.Tensor]:
    """Generator behind `decode_latent_ranges`; no_grad applies only while it runs.

    (torch.no_grad on a generator function wraps each resume, so the consumer's own code
    between yields keeps its grad mode.)
    """
    _run_offload_hook(vae)
    # Same batch split as `vae.decode`: slicing decodes each sample on its own.
    slices = list(z.split(1)) if vae.use_slicing and z.shape[0] > 1 else [z]
    vae.clear_cache()
    cache_size = len(vae._feat_map)
    try:
        decoders = [_SliceDecoder(vae, part, cache_size) for part in slices]
        for start, end in ranges:
            parts = [decoder.decode(start, end) for decoder in decoders]
            yield parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
    finally:
        vae.clear_cache()


def _run_offload_hook(vae: AutoencoderKLWan) -> None:
    """Trigger accelerate's CPU-offload hook, as `vae.decode`'s `apply_forward_hook` does.

    With `enable_model_cpu_offload` the VAE only moves to the accelerator when this hook
    fires; calling `vae.decoder` directly would otherwise run it on the CPU.
    """
    hook = getattr(vae, "_hf_hook", None)
    if hook is not None and hasattr(hook, "pre_forward"):
        hook.pre_forward(vae)


@dataclass(frozen=True)
class _TileBlend:
    """Crop and blend sizes in decoder-output pixels, computed as `tiled_decode` does."""

    sample_height: int
    sample_width: int
    stride_height: int
    stride_width: int
    blend_height: int
    blend_width: int

    @classmethod
    def for_vae(cls, vae: AutoencoderKLWan, latent_height: int, latent_width: int) -> _TileBlend:
        patch = vae.config.patch_size or 1
        ratio = vae.spatial_compression_ratio
        stride_height = vae.tile_sample_stride_height // patch
        stride_width = vae.tile_sample_stride_width // patch
        return cls(
            sample_height=latent_height * ratio // patch,
            sample_width=latent_width * ratio // patch,
            stride_height=stride_height,
            stride_width=stride_width,
            blend_height=vae.tile_sample_min_height // patch - stride_height,
            blend_width=vae.tile_sample_min_width // patch - stride_width,
        )


class _SliceDecoder:
    """Streams one batch slice through the untiled or tiled path that `vae._decode` picks."""

    def __init__(self, vae: AutoencoderKLWan, z: torch.Tensor, cache_size: int) -> None:
        self.vae = vae
        _, _, _, height, width = z.shape
        ratio = vae.spatial_compression_ratio
        tile_h = vae.tile_sample_min_height // ratio
        tile_w = vae.tile_sample_min_width // ratio
        self.blend: _TileBlend | None = None
        if not (vae.use_tiling and (width > tile_w or height > tile_h)):
            self.rows = [[_CausalStream(vae.post_quant_conv(z), [None] * cache_size, False)]]
            return
        stride_h = vae.tile_sample_stride_height // ratio
        stride_w = vae.tile_sample_stride_width // ratio
        self.rows = [
            [
                _CausalStream(z[:, :, :, i : i + tile_h, j : j + tile_w], [None] * cache_size, True)
                for j in range(0, width, stride_w)
            ]
            for i in range(0, height, stride_h)
        ]
        self.blend = _TileBlend.for_vae(vae, height, width)

    def decode(self, start: int, end: int) -> torch.Tensor:
        """Pixels of latent frames [start, end) for this slice, clamped to [-1, 1]."""
        decoded = [[stream.decode(self.vae, start, end) for stream in row] for row in self.rows]
        out = decoded[0][0] if self.blend is None else self._blend(decoded, self.blend)
        if self.vae.config.patch_size is not None:
            out = unpatchify(out, patch_size=self.vae.config.patch_size)
        return torch.clamp(out, min=-1.0, max=1.0)

    def _blend(self, rows: list[list[torch.Tensor]], geometry: _TileBlend) -> torch.Tensor:
        """Blend and crop tiles exactly like `tiled_decode`, including its in-place updates.

        blend_v/blend_h write into their second argument, so later tiles blend against
        already-blended neighbours; keeping the same loop keeps the same arithmetic.
        """
        vae = self.vae
        result_rows = []
        for i, row in enumerate(rows):
            result_row = []
            for j, tile in enumerate(row):
                if i > 0:
                    tile = vae.blend_v(rows[i - 1][j], tile, geometry.blend_height)
                if j > 0:
                    tile = vae.blend_h(row[j - 1], tile, geometry.blend_width)
                result_row.append(tile[:, :, :, : geometry.stride_height, : geometry.stride_width])
            result_rows.append(torch.cat(result_row, dim=-1))
        return torch.cat(result_rows, dim=3)[:, :, :, : geometry.sample_height, : geometry.sample_width]
