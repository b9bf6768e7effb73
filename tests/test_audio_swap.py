"""Denoiser.swap_model (a model reload without an audio gap), Denoiser.gains, math."""

import numpy as np
import pytest

from edgernn.audio import Denoiser
from edgernn.errors import EdgeRNNError
from tests.test_audio_denoiser import gain_model, gru_model

H = 160


def test_swap_keeps_the_audio_going_and_the_new_model_takes_over(rng):
    a = gru_model(rng)
    x = rng.uniform(-0.5, 0.5, 60 * H).astype(np.float32)
    k = 25  # frames 0..k-1 by model a, the rest by unity gains
    ref = Denoiser(a).process(x)
    d = Denoiser(a)
    first = d.process(x[:k * H])
    d.swap_model(gain_model(1.0))
    rest = d.process(x[k * H:])
    y = np.concatenate([first, rest])
    # what left before the swap is model a's own output, bit for bit
    assert np.array_equal(first, ref[:k * H])
    # input from sample k H on lies only in frames of the new model: delayed input
    lat = d.latency
    np.testing.assert_allclose(y[k * H + lat:], x[k * H:-lat], atol=1e-5)
    # the hop straddling the swap mixes both models: audio, not a gap of zeros
    seam = y[(k - 1) * H + lat:k * H + lat]
    assert np.sqrt(np.mean(seam ** 2)) > 0.1 * np.sqrt(np.mean(x ** 2))
    assert d.frames == 60


def test_swap_refuses_a_model_that_does_not_fit_and_changes_nothing(rng):
    a = gru_model(rng)
    x = rng.uniform(-0.5, 0.5, 20 * H).astype(np.float32)
    ref = Denoiser(a).process(x)
    d = Denoiser(a)
    first = d.process(x[:7 * H])
    with pytest.raises(EdgeRNNError, match=r"taking 33 features \(16 bands\) must output 16"):
        d.swap_model(gain_model(1.0, bands=8, features=33))
    with pytest.raises(EdgeRNNError, match="front end"):
        d.swap_model(gain_model(1.0, bands=16))
    assert np.array_equal(np.concatenate([first, d.process(x[7 * H:])]), ref)


def test_gains_are_the_last_frames_model_gains():
    d = Denoiser(gain_model(0.25))
    assert d.gains is None
    d.process(np.zeros(H - 1, np.float32))
    assert d.gains is None
    d.process(np.zeros(1, np.float32))
    np.testing.assert_array_equal(d.gains, np.full(32, 0.25, np.float32))
    d.reset()
    assert d.gains is None


def test_math_reaches_the_models_stream(rng):
    a = gru_model(rng)
    x = rng.uniform(-0.5, 0.5, 30 * H).astype(np.float32)
    exact = Denoiser(a, math="exact")
    fast = Denoiser(a)
    ye, yf = exact.process(x), fast.process(x)
    np.testing.assert_allclose(ye, yf, atol=1e-4)
    assert not np.array_equal(ye, yf)  # tanh/exp from libm, not the fast approximations


def test_swap_with_another_math_runs_the_new_model_in_it(rng):
    a = gru_model(rng)
    x = rng.uniform(-0.5, 0.5, 40 * H).astype(np.float32)
    k, tail = 15, 3 * H  # past the seam, output comes from the new model's frames only

    def swapped(start_math, **kw):
        d = Denoiser(a, math=start_math)
        d.process(x[:k * H])
        d.swap_model(a, **kw)
        return d, d.process(x[k * H:])

    d, y = swapped("fast", math="exact")
    _, want = swapped("exact")  # exact from the start: the same front end, the same frames
    _, fast = swapped("fast")
    assert d.math == "exact"
    np.testing.assert_array_equal(y[tail:], want[tail:])
    assert not np.array_equal(y[tail:], fast[tail:])
