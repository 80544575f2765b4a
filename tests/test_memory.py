"""Memory presets: offloading is exact, fp8 weight storage stays within its stated tolerance."""

from __future__ import annotations

import pytest
import torch

from engine import RenderSettings, WeightsError, WeightsSpec, load_pipeline
from engine.memory import GIB, MemoryPlan, apply_memory_plan, plan_memory
from engine.toyworld import example_scenes

CPU = torch.device("cpu")


def test_auto_picks_by_free_memory_and_names_its_reason():
    cuda = torch.device("cuda")  # only described, never touched: free memory is given
    assert plan_memory("auto", cuda, free_bytes=79 * GIB).mode == "high"
    assert plan_memory("auto", cuda, free_bytes=40 * GIB).mode == "balanced"
    assert plan_memory("auto", cuda, free_bytes=37 * GIB).mode == "low"  # balanced peaked at 36.8 GiB
    low = plan_memory("auto", cuda, free_bytes=23 * GIB)
    assert (low.mode, low.offload, low.fp8_weights) == ("low", "group", True)
    assert "23.0 GiB free" in low.reason
    assert plan_memory("auto", CPU).mode == "high"
    assert plan_memory("balanced", CPU).offload == "model"
    with pytest.raises(WeightsError, match="^memory: must be one of"):
        plan_memory("tiny", CPU)  # type: ignore[arg-type]


def _render(pipe, seed: int = 3) -> torch.Tensor:
    settings = RenderSettings(steps=4, seed=seed, guidance_scale=3.0, preview_every=0)
    return pipe(example_scenes()[0].spec(), settings).latents


def _loaded(tiny_weights, plan: MemoryPlan | None = None):
    pipe, info = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu", memory="high")
    if plan is not None:
        apply_memory_plan(pipe, plan, CPU)
    return pipe, info


@pytest.mark.parametrize("offload", ["model", "group"])
def test_offloading_changes_no_weight_and_no_result(tiny_weights, offload):
    """Offloading moves the same weights; results agree to float32 round-off.

    Bit-equality cannot be asked of two model instances here: on this CPU build even a
    `copy.deepcopy` of the tiny transformer differs from the original by ~1e-6 (oneDNN picks
    its kernel path by buffer alignment), so the tolerance is ten times that floor.
    """
    plain, info = _loaded(tiny_weights)
    assert info.memory.mode == "high" and info.to_dict()["memory"]["offload"] == "none"
    offloaded, _ = _loaded(tiny_weights, MemoryPlan("balanced", offload, fp8_weights=False, reason="test"))
    for name, model in (("transformer", plain.transformer), ("transformer_2", plain.transformer_2)):
        moved = getattr(offloaded, name).state_dict()
        for key, value in model.state_dict().items():
            assert torch.equal(moved[key].cpu(), value), key
    torch.testing.assert_close(_render(offloaded), _render(plain), atol=1e-5, rtol=0)


def test_low_mode_fp8_weights_stay_within_tolerance(tiny_weights):
    """fp8 e4m3 keeps 3 mantissa bits: each weight moves by at most 1/16 of itself. Over a whole
    render that must stay well below what changing the seed does to the same scene."""
    plain, _ = _loaded(tiny_weights)
    low, info = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu", memory="low")
    assert info.memory.fp8_weights and info.memory.offload == "group"
    parameters = dict(low.transformer.named_parameters())
    projections = [name for name in parameters if name.endswith(("to_q.weight", "to_out.0.weight", "ffn.net.2.weight"))]
    assert projections and {parameters[name].dtype for name in projections} == {torch.float8_e4m3fn}
    assert parameters["proj_out.weight"].dtype == torch.float32  # kept in the compute dtype
    reference, quantised, other_seed = _render(plain), _render(low), _render(plain, seed=4)
    fp8_error = (quantised - reference).norm()
    assert 0 < fp8_error < 0.25 * (other_seed - reference).norm()


def test_compiled_blocks_give_the_plain_result(tiny_weights):
    """Regional compilation (`--compile`) compiles each transformer block; renders must not change."""
    plain, _ = _loaded(tiny_weights)
    compiled, info = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu", memory="high", compile_blocks=True)
    assert info.compiled and "blocks compiled" in info.describe()
    torch.testing.assert_close(_render(compiled), _render(plain), atol=1e-4, rtol=0)
