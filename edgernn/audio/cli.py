"""``edgernn denoise IN -o OUT``: denoise a sound file (or a live device) with a gain model.

    edgernn denoise noisy.wav -o clean.wav [--model M.ernn] [--attenuation-limit DB]
                    [--plot before_after.png]
    edgernn denoise --live [--model M.ernn] [--attenuation-limit DB]

Any sample rate, channel count and format soundfile reads; each channel is
resampled to the model's rate (soxr), denoised on its own, resampled back, and
written at the input's rate and length (time-aligned: the front end's latency
is removed). The output is written to a temporary file and renamed, so an
existing file is replaced only by a complete result; the input is never
overwritten. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..errors import EdgeRNNError


def add_arguments(p) -> None:
    p.add_argument("input", nargs="?", help="sound file to denoise (WAV, FLAC, OGG, ...)")
    p.add_argument("-o", "--output", help="denoised file to write (format from its extension)")
    p.add_argument("--model", help="denoising model .ernn: a band-gain model, or one that takes "
                                    "and gives samples (DTLN, NSNet2: edgernn convert --audio); "
                                    "default: the bundled denoiser")
    p.add_argument("--attenuation-limit", type=float, default=None, metavar="DB",
                   help="attenuate no band by more than DB decibels (default: no limit)")
    p.add_argument("--plot", metavar="PNG", help="also write before/after spectrograms here")
    p.add_argument("--live", action="store_true",
                   help="denoise the default input device to the default output device")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class _Progress:
    """A one-line progress bar on stderr for files longer than `min_seconds`."""

    def __init__(self, seconds: float, quiet: bool, min_seconds: float = 30.0):
        self.on = not quiet and seconds >= min_seconds
        self.last = -1

    def __call__(self, frac: float) -> None:
        pct = int(100 * frac)
        if self.on and pct != self.last:
            self.last = pct
            bar = "#" * (pct // 4)
            print(f"\r[{bar:<25}] {pct:3d}%", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on:
            print(file=sys.stderr)


def run(args) -> int:
    from .pipeline import open_denoiser

    if args.attenuation_limit is not None and not args.attenuation_limit >= 0:
        raise EdgeRNNError(f"--attenuation-limit must be >= 0 dB, got {args.attenuation_limit}")
    denoiser = open_denoiser(args.model, attenuation_limit_db=args.attenuation_limit)
    if args.live:
        from .io import live

        live(denoiser)
        return 0
    if not args.input or not args.output:
        raise EdgeRNNError("expected IN and -o OUT (or --live)")
    src, dst = Path(args.input), Path(args.output)
    if dst.exists() and src.exists() and os.path.samefile(src, dst) or \
            src.resolve() == dst.resolve():
        raise EdgeRNNError(f"refusing to overwrite the input file {src} (choose another -o)")
    if dst.is_dir():
        raise EdgeRNNError(f"{dst}: is a directory, expected an output file name")
    if not dst.parent.resolve().is_dir():
        raise EdgeRNNError(f"{dst}: folder {dst.parent} does not exist")
    from .io import denoise_array, read_audio, write_audio_atomic

    x, rate, info = read_audio(src)
    seconds = x.shape[0] / rate
    bar = _Progress(seconds, args.quiet)
    t0 = time.perf_counter()
    y = denoise_array(denoiser, x, rate, progress=bar)
    elapsed = time.perf_counter() - t0
    bar.done()
    write_audio_atomic(dst, y, rate, info["subtype"])
    print(f"wrote {dst}: {seconds:.2f} s, {x.shape[1]} channel(s) at {rate} Hz, model at "
          f"{denoiser.sample_rate} Hz; denoised in {elapsed:.2f} s, real-time factor "
          f"{elapsed / seconds:.4f}")
    if args.plot:
        from .plot import before_after

        before_after(x[:, 0], y[:, 0], rate, args.plot, title=src.name)
        print(f"wrote {args.plot}")
    return 0
