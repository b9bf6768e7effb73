"""``make demo``: stream the bundled model over the bundled input, print latency.

Runs reference net M (GRU 42->96 -> Dense 96->22 sigmoid, BENCH.md) from
``edgernn/data/demo_m.ernn`` one 10 ms frame at a time over 1000 frames of
band-energy features, checks ``step`` against ``run``, and prints per-step
latency percentiles. When the serial bridge is installed, also runs the
simulated sensor device through it for a few seconds. Then denoises the bundled
noisy speech sample (`denoise_demo`).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

import edgernn
from edgernn.cli import benchmark

DATA = Path(__file__).resolve().parent / "edgernn" / "data"


def main() -> int:
    t0 = time.perf_counter()
    model = edgernn.load(DATA / "demo_m.ernn")
    feats = np.load(DATA / "demo_features.npy")
    stream = model.stream()
    out = np.empty(model.output_size, np.float32)
    gains = np.empty((len(feats), model.output_size), np.float32)
    for t, x in enumerate(feats):
        gains[t] = stream.step(x, out=out)
    ready = time.perf_counter() - t0
    print(model.describe())
    print(f"\nloaded + compiled/cached + streamed {len(feats)} frames in {ready:.2f} s")
    same = np.array_equal(gains, model.stream().run(feats))
    print(f"step() over the stream equals run() over the sequence bit for bit: {same}")
    print(f"gain per band, frame 500: {np.array2string(gains[500], precision=2)}")
    st = benchmark.step_stats(model.stream(), list(feats), 50_000)
    run_us = benchmark.run_per_step_us(model.stream(), feats)
    print(f"\nstep latency over {st['n']} steps: p50 {st['p50_us']:.2f} us, "
          f"p99 {st['p99_us']:.2f} us, p99.9 {st['p99.9_us']:.2f} us")
    print(f"run() per step (time loop in native code): {run_us:.2f} us")
    print("frame budget at 10 ms hops: 10000 us")
    if importlib.util.find_spec("firmware_bridge.demo") is not None:
        from firmware_bridge.demo import main as bridge_demo

        print()
        bridge_demo()
    print()
    denoise_ok = denoise_demo()
    return 0 if same and denoise_ok else 1


# ---- audio denoising (issue 10; owned by the audio work) -------------------------------------

def denoise_demo(out_dir="build/denoise-demo") -> bool:
    """Denoise the bundled noisy sample; write the cleaned WAV and a before/after PNG."""
    from edgernn.audio import BUNDLED, Denoiser
    from edgernn.audio.io import denoise_array, read_audio, write_audio_atomic
    from edgernn.audio.plot import before_after

    if not BUNDLED.exists():
        print(f"denoise demo: no bundled denoiser model at {BUNDLED}")
        return False
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, rate, _ = read_audio(DATA / "denoise_demo.wav")
    den = Denoiser()
    t0 = time.perf_counter()
    y = denoise_array(den, x, rate)
    took = time.perf_counter() - t0
    write_audio_atomic(out / "denoised.wav", y, rate, "PCM_16")
    before_after(x[:, 0], y[:, 0], rate, out / "before_after.png", "denoise_demo.wav")
    frames = den.frames
    print(f"denoised {DATA / 'denoise_demo.wav'} ({x.shape[0] / rate:.1f} s, {frames} frames of "
          f"10 ms) in {took:.2f} s: {1e6 * took / frames:.0f} us per frame including the "
          f"first call's compile/load; latency {1000 * den.latency / den.sample_rate:.1f} ms")
    print(f"wrote {out / 'denoised.wav'} and {out / 'before_after.png'}")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
