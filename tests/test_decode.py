"""Streaming decode must match `vae.decode` bit for bit, shot split or not."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLWan

from engine.decode import decode_latent_ranges, pixel_frame_count

RANGE_LAYOUTS = [[(0, 3), (3, 6), (6, 9)], [(0, 1), (1, 7), (7, 9)], [(0, 9)]]


def _randomise(vae: AutoencoderKLWan, seed: int) -> AutoencoderKLWan:
    """Seeded random weights, so the decoded video is far from trivial (not ~0 or saturated)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in vae.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return vae.eval()


def _wan21_like_vae(tiled: bool) -> AutoencoderKLWan:
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    if tiled:
        vae.enable_tiling(
            tile_sample_min_height=64,
            tile_sample_min_width=64,
            tile_sample_stride_height=48,
            tile_sample_stride_width=48,
        )
    return _randomise(vae, seed=1)


@pytest.fixture(scope="module")
def latent() -> torch.Tensor:
    return torch.randn(1, 16, 9, 12, 20, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def reference(latent: torch.Tensor) -> dict[bool, tuple[AutoencoderKLWan, torch.Tensor]]:
    """VAE and its one-shot decode (96x160, 33 frames) per tiling mode."""
    out = {}
    for tiled in (False, True):
        vae = _wan21_like_vae(tiled)
        with torch.no_grad():
            out[tiled] = (vae, vae.decode(latent).sample)
    return out


def test_reference_is_nontrivial_and_tiling_engaged(reference) -> None:
    untiled, tiled = reference[False][1], reference[True][1]
    assert untiled.shape == (1, 3, 33, 96, 160)
    assert untiled.std() > 0.05 and (untiled.abs() < 1).float().mean() > 0.9
    assert not torch.equal(untiled, tiled), "tiles should blend differently from a whole decode"


@pytest.mark.parametrize("tiled", [False, True], ids=["untiled", "tiled"])
@pytest.mark.parametrize("ranges", RANGE_LAYOUTS, ids=["even", "uneven", "single"])
def test_streamed_ranges_equal_full_decode(reference, latent, tiled, ranges) -> None:
    vae, expected = reference[tiled]
    parts = list(decode_latent_ranges(vae, latent, ranges))
    assert [part.shape[2] for part in parts] == [pixel_frame_count(s, e) for s, e in ranges]
    assert torch.equal(torch.cat(parts, dim=2), expected)


def test_patchified_residual_vae_with_slicing_and_tiling() -> None:
    """Wan2.2-style VAE (patch_size 2, residual up blocks), batch of 2 decoded slice by slice."""
    vae = _randomise(
        AutoencoderKLWan(
            base_dim=4,
            decoder_base_dim=8,
            z_dim=8,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
            is_residual=True,
            in_channels=12,
            out_channels=12,
            patch_size=2,
            scale_factor_spatial=16,
        ),
        seed=3,
    )
    vae.enable_slicing()
    vae.enable_tiling(
        tile_sample_min_height=64,
        tile_sample_min_width=64,
        tile_sample_stride_height=48,
        tile_sample_stride_width=48,
    )
    z = torch.randn(2, 8, 5, 6, 10, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = vae.decode(z).sample
    parts = list(decode_latent_ranges(vae, z, [(0, 2), (2, 5)]))
    assert [part.shape for part in parts] == [(2, 3, 5, 96, 160), (2, 3, 12, 96, 160)]
    assert torch.equal(torch.cat(parts, dim=2), expected)


def test_early_stop_clears_cache_and_consumer_keeps_grad_mode(reference, latent) -> None:
    vae, _ = reference[False]
    stream = decode_latent_ranges(vae, latent, [(0, 3), (3, 9)])
    first = next(stream)
    assert torch.is_grad_enabled(), "no_grad must not leak out of the generator"
    assert not first.requires_grad
    stream.close()
    assert all(entry is None for entry in vae._feat_map)


def test_offload_hook_fires_like_vae_decode(latent) -> None:
    vae = _wan21_like_vae(tiled=False)
    calls = []

    class Hook:
        def pre_forward(self, module):
            calls.append(module)

    vae._hf_hook = Hook()
    next(decode_latent_ranges(vae, latent[:, :, :1], [(0, 1)]))
    assert calls == [vae]


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([], "empty"),
        ([(1, 9)], "starts at 1, expected 0"),
        ([(0, 3), (4, 9)], "starts at 4, expected 3"),
        ([(0, 5), (3, 9)], "starts at 3, expected 5"),
        ([(0, 3), (3, 3), (3, 9)], "is empty"),
        ([(0, 3), (3, 8)], "end at latent frame 8 but z has 9"),
        ([(0, 3), (3, 10)], "end at latent frame 10 but z has 9"),
    ],
)
def test_invalid_ranges_raise_at_call(reference, latent, ranges, message) -> None:
    vae, _ = reference[False]
    with pytest.raises(ValueError, match=message):
        decode_latent_ranges(vae, latent, ranges)


def test_wrong_latent_shape_raises(reference) -> None:
    vae, _ = reference[False]
    with pytest.raises(ValueError, match=r"z must be \(B, 16, F, h, w\)"):
        decode_latent_ranges(vae, torch.zeros(1, 8, 9, 12, 20), [(0, 9)])


def test_pixel_frame_count() -> None:
    assert pixel_frame_count(0, 1) == 1
    assert pixel_frame_count(0, 3) == 9
    assert pixel_frame_count(3, 6) == 12
    assert pixel_frame_count(0, 61) == 241
    with pytest.raises(ValueError, match="empty or negative"):
        pixel_frame_count(4, 4)
