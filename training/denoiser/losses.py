"""Training losses of the denoiser: RNNoise 0.1's and 0.2's gain losses and variants.

Gains and targets are band gains [N, T, B] (a target of -1: no target), vad
[N, T, 1] and its labels [N, T]; ``x`` the raw front-end features [N, T, F].
"""

from __future__ import annotations

import torch


def spectral_term(gains, g, x, c=0.3, spans=(1, 4)):
    """Compressed band-spectrum error at several time resolutions (a perceptual term).

    The mixture's band energies ``e`` come from the features (their first B are
    ``log10(e + 1e-9)``); output and target band energies are ``gain^2 e``.
    Over windows of ``span`` frames the energies are summed and compared as
    ``E^(c/2)`` (compressed magnitudes), each example normalised by its mean
    compressed mixture level, so loud speech bands weigh more than quiet ones
    and the level of the example does not matter.
    """
    nb = g.shape[-1]
    e = (10.0 ** x[..., :nb].double() - 1e-9).clamp_min(0).float()
    mask = (g >= 0).float()
    est, ref = gains ** 2 * e * mask, g.clamp_min(0) ** 2 * e * mask
    total = 0.0
    for span in spans:
        t = est.shape[1] // span * span
        es = est[:, :t].reshape(est.shape[0], -1, span, nb).sum(2)
        rs = ref[:, :t].reshape(ref.shape[0], -1, span, nb).sum(2)
        ms = (e * mask)[:, :t].reshape(e.shape[0], -1, span, nb).sum(2)
        norm = (ms + 1e-12) ** (c / 2)
        norm = norm.mean(dim=(1, 2), keepdim=True) + 1e-9
        d = ((es + 1e-12) ** (c / 2) - (rs + 1e-12) ** (c / 2)) / norm
        total = total + (d ** 2).mean()
    return total / len(spans)


def loss_fn(gains, vad, g, v, kind="rnnoise", x=None, under=3.0, pause=1.0):
    """(total loss, gain loss) of predicted gains [N, T, B] and vad [N, T, 1] vs targets.

    ``rnnoise``: RNNoise 0.1's, ``d = sqrt(gain) - sqrt(target)``, mean of
    ``d^2 + 10 d^4`` over bands with a target, plus 0.05 x the VAD cross-entropy.
    ``rnnoise2``: RNNoise 0.2's (xiph/rnnoise torch/rnnoise/train_rnnoise.py):
    targets sharpened to ``t tanh(8 t)^2`` (small gains pushed towards 0),
    ``d = gain^0.25 - target^0.25``, speech frames weighted 6x (``1 + 5 vad``),
    plus 0.001 x a confidence-weighted VAD cross-entropy.
    ``rnnoise2a``: ``rnnoise2`` with gains below the (unsharpened) target on
    speech frames weighted ``under`` x (3 unless given) where that target is
    above 0.3 (over-attenuated speech bands cost more than residual noise).
    ``pause`` (any rnnoise2 kind): gains above the target in frames without
    speech weighted ``pause`` x (residual noise between words).
    ``distill``: ``rnnoise2`` without sharpening the targets, for a teacher's
    gains (`teacher.py`): they are already what a causal model does.
    ``blend``: the mean of the two. ``spectral`` (``spectral2``): ``rnnoise``
    (``rnnoise2``) plus `spectral_term` (needs the raw features ``x``).
    """
    if kind in ("spectral", "spectral2"):
        a, ga = loss_fn(gains, vad, g, v, "rnnoise" if kind == "spectral" else "rnnoise2")
        sp = spectral_term(gains, g, x)
        return a + sp, ga + sp
    if kind == "blend":
        a, ga = loss_fn(gains, vad, g, v, "rnnoise")
        b, gb = loss_fn(gains, vad, g, v, "rnnoise2")
        return 0.5 * (a + b), 0.5 * (ga + gb)
    mask = (g >= 0).float()
    if kind in ("rnnoise2", "rnnoise2a", "distill"):
        t = g.clamp_min(0)
        if kind != "distill":
            t = t * torch.tanh(8 * t) ** 2
        d = gains.clamp_min(1e-6) ** 0.25 - t.clamp_min(1e-12) ** 0.25
        w = mask * (1 + 5 * v.unsqueeze(-1))
        if kind == "rnnoise2a":
            w = w * (1 + (under - 1) * ((d < 0) & (g > 0.3)).float() * v.unsqueeze(-1))
        if pause != 1.0:
            w = w * (1 + (pause - 1) * (d > 0).float() * (1 - v.unsqueeze(-1)))
        gl = (w * d ** 2).sum() / mask.sum().clamp_min(1)
        if vad is None:
            return gl, gl
        p = vad.squeeze(-1)
        vl = (torch.abs(2 * v - 1) * (-v * torch.log(0.01 + p)
                                      - (1 - v) * torch.log(1.01 - p))).mean()
        return gl + 0.001 * vl, gl
    d = (gains.clamp_min(1e-6).sqrt() - g.clamp_min(0).sqrt()) * mask
    gl = (d ** 2 + 10 * d ** 4).sum() / mask.sum().clamp_min(1)
    if vad is None:
        return gl, gl
    vl = torch.nn.functional.binary_cross_entropy(vad.squeeze(-1).clamp(1e-6, 1 - 1e-6), v)
    return gl + 0.05 * vl, gl
