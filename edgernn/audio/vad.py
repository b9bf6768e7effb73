"""Voice activity detection: `VAD` (a model whose audio section is of kind ``"vad"``,
e.g. Silero VAD converted with ``--audio silero-vad``), `speech_segments`, and
``edgernn vad IN [--threshold P] [--min-speech-ms MS] [--min-silence-ms MS]
[--pad-ms MS] [--json | --csv] [--probabilities]``.

The segment rules are ``silero_vad.get_speech_timestamps``' (with its defaults and no
limit on a segment's length): speech starts at the first chunk whose probability
reaches ``threshold``; it ends at the first chunk below ``threshold - 0.15`` (at
least 0.01) that a silence of ``min_silence_ms`` follows; segments shorter than
``min_speech_ms`` are dropped; each is widened by ``pad_ms`` on both sides (half
the gap when two would overlap).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError


class VAD:
    """Streaming speech probabilities, one per chunk of ``hop`` samples.

    Parameters
    ----------
    model : edgernn.Model, str or Path (audio section of kind ``"vad"``)
    """

    def __init__(self, model, math: str = "fast"):
        if isinstance(model, (str, Path)):
            from ..model import load

            model = load(model)
        audio = getattr(model, "audio", None) or {}
        if audio.get("kind") != "vad":
            raise EdgeRNNError(f"a VAD needs a model whose audio section is of kind 'vad' "
                               f"(edgernn convert silero_vad.onnx --audio silero-vad), this one "
                               f"has {audio or 'none'}")
        self.model, self.audio = model, audio
        self.sample_rate, self.hop = audio["sample_rate"], audio["hop"]
        self.stream = model.stream(math=math)
        self._p = np.zeros(1, np.float32)
        self.reset()

    def reset(self) -> None:
        self.stream.reset()
        self._buf = np.zeros(self.hop, np.float32)
        self._fill = 0

    def process(self, block) -> np.ndarray:
        """The probabilities of the chunks ``block`` completes (float32[k])."""
        x = np.nan_to_num(np.asarray(block, np.float32).reshape(-1))
        out = []
        i = 0
        while i < x.size:
            take = min(self.hop - self._fill, x.size - i)
            self._buf[self._fill:self._fill + take] = x[i:i + take]
            self._fill += take
            i += take
            if self._fill == self.hop:
                self._fill = 0
                out.append(float(self.stream.step(self._buf, out=self._p)[0]))
        return np.asarray(out, np.float32)

    def probabilities(self, x) -> np.ndarray:
        """Every chunk's probability over ``x`` from silence, the last one zero-padded."""
        self.reset()
        x = np.asarray(x, np.float32).reshape(-1)
        pad = (-x.size) % self.hop
        return self.process(np.concatenate([x, np.zeros(pad, np.float32)]))


def speech_segments(probs, n_samples: int, rate: int, hop: int, threshold: float = 0.5,
                    min_speech_ms: float = 250, min_silence_ms: float = 100,
                    pad_ms: float = 30, neg_threshold: float | None = None) -> list[dict]:
    """``[{"start": sample, "end": sample}, ...]`` from per-chunk probabilities (module
    docstring; ``n_samples``: the audio's length)."""
    min_speech = rate * min_speech_ms / 1000
    min_silence = rate * min_silence_ms / 1000
    pad = rate * pad_ms / 1000
    neg = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
    segs, cur, on, temp_end = [], {}, False, 0
    for i, p in enumerate(probs):
        t = hop * i
        if p >= threshold and temp_end:
            temp_end = 0
        if p >= threshold and not on:
            on, cur = True, {"start": t}
            continue
        if p < neg and on:
            temp_end = temp_end or t
            if t - temp_end < min_silence:
                continue
            cur["end"] = temp_end
            if cur["end"] - cur["start"] > min_speech:
                segs.append(cur)
            cur, on, temp_end = {}, False, 0
    if cur and n_samples - cur["start"] > min_speech:
        cur["end"] = n_samples
        segs.append(cur)
    for i, s in enumerate(segs):
        if i == 0:
            s["start"] = int(max(0, s["start"] - pad))
        if i < len(segs) - 1:
            gap = segs[i + 1]["start"] - s["end"]
            if gap < 2 * pad:
                s["end"] += int(gap // 2)
                segs[i + 1]["start"] = int(max(0, segs[i + 1]["start"] - gap // 2))
            else:
                s["end"] = int(min(n_samples, s["end"] + pad))
                segs[i + 1]["start"] = int(max(0, segs[i + 1]["start"] - pad))
        else:
            s["end"] = int(min(n_samples, s["end"] + pad))
    return segs


# --- edgernn vad -----------------------------------------------------------------------

def add_arguments(p) -> None:
    p.add_argument("input", help="sound file (WAV, FLAC, ...); mixed to mono")
    p.add_argument("--model", required=True, help="VAD model .ernn (edgernn convert "
                                                  "silero_vad.onnx --audio silero-vad)")
    p.add_argument("--threshold", type=float, default=0.5, metavar="P")
    p.add_argument("--min-speech-ms", type=float, default=250.0, metavar="MS")
    p.add_argument("--min-silence-ms", type=float, default=100.0, metavar="MS")
    p.add_argument("--pad-ms", type=float, default=30.0, metavar="MS")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object")
    fmt.add_argument("--csv", action="store_true", help="start,end in seconds per line")
    p.add_argument("--probabilities", action="store_true",
                   help="also the probability of every chunk (JSON: 'probabilities')")


def run(args) -> int:
    from .io import read_audio, resample

    if not 0.0 < args.threshold < 1.0:
        raise EdgeRNNError(f"--threshold must be in (0, 1), got {args.threshold}")
    for name in ("min_speech_ms", "min_silence_ms", "pad_ms"):
        if not getattr(args, name) >= 0:
            raise EdgeRNNError(f"--{name.replace('_', '-')} must be >= 0, got "
                               f"{getattr(args, name)}")
    vad = VAD(args.model)
    x, rate, _ = read_audio(Path(args.input))
    mono = resample(x.mean(axis=1), rate, vad.sample_rate)
    probs = vad.probabilities(mono)
    segs = speech_segments(probs, mono.size, vad.sample_rate, vad.hop, args.threshold,
                           args.min_speech_ms, args.min_silence_ms, args.pad_ms)
    sec = [{"start": s["start"] / vad.sample_rate, "end": s["end"] / vad.sample_rate}
           for s in segs]
    if args.json:
        doc = {"file": str(args.input), "sample_rate": vad.sample_rate, "chunk": vad.hop,
               "segments": sec}
        if args.probabilities:
            doc["probabilities"] = [round(float(p), 6) for p in probs]
        print(json.dumps(doc))
    elif args.csv:
        print("start,end")
        for s in sec:
            print(f"{s['start']:.3f},{s['end']:.3f}")
    else:
        for s in sec:
            print(f"speech {s['start']:8.3f} s - {s['end']:8.3f} s")
        print(f"{len(sec)} segment(s) in {mono.size / vad.sample_rate:.2f} s", file=sys.stderr)
        if args.probabilities:
            print(" ".join(f"{p:.3f}" for p in probs))
    return 0
