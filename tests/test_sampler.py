"""The upstream sampler: shifted linspace sigmas, Euler steps to 0, the expert switch at t = 875."""

import numpy as np
import torch

from engine.sampler import UpstreamFlowScheduler, upstream_sigmas


def test_sigmas_timesteps_and_euler_step_match_upstream():
    scheduler = UpstreamFlowScheduler(shift=5.0)
    scheduler.set_timesteps(50)
    s = np.linspace(1.0, 0.0, 51)[:-1]
    shifted = 5 * s / (1 + 4 * s)
    assert np.allclose(scheduler.sigmas[:-1].numpy(), shifted, atol=1e-6)
    assert scheduler.sigmas[-1].item() == 0.0
    assert np.allclose(scheduler.timesteps.numpy(), 1000 * shifted, atol=1e-3)
    assert upstream_sigmas(4) == [1.0, 0.75, 0.5, 0.25]

    x, v = torch.randn(1, 4), torch.randn(1, 4)
    scheduler.set_begin_index(0)
    stepped = scheduler.step(v, scheduler.timesteps[0], x, return_dict=False)[0]
    assert torch.allclose(stepped, x + v * (scheduler.sigmas[1] - scheduler.sigmas[0]))


def test_high_noise_expert_runs_while_timestep_at_least_875():
    scheduler = UpstreamFlowScheduler(shift=5.0)
    scheduler.set_timesteps(50)
    high = [bool(t >= 875) for t in scheduler.timesteps]
    switch = high.index(False)
    assert all(high[:switch]) and not any(high[switch:])
    # s' >= 0.875 <=> 5s/(1+4s) >= 0.875 <=> s >= 0.5833: steps 0..20 of linspace(1, 0, 51)
    assert switch == 21
