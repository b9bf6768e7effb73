"""Start and memory of the audio paths, tree against tree: ``edgernn denoise``, a denoising
daemon, and ``Denoiser.process`` per 10 ms hop, interleaved, pinned to one CPU.

    git worktree add /tmp/before <commit>
    python bench/audio_start.py before=/tmp/before after=. [--runs 5] [--cpu 1]

Each tree gets a cache folder of its own (``edgernn warmup`` first, so every run is a
warm start). Per run: the wall time and peak RSS (``ru_maxrss``) of ``edgernn denoise``
over the bundled 7.2 s demo WAV and of ``edgernn serve`` denoising it from a WAV
source to a WAV sink (not real time: it ends with the file), and the p50/p99 of one
``Denoiser.process`` call per hop. Prints the medians; writes bench/out/audio_start.json.
Other jobs sharing the CPU move the times: report them with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAV = ROOT / "edgernn" / "data" / "denoise_demo.wav"
HOP = r"""
import sys, time, numpy as np, soundfile as sf
from edgernn.audio import Denoiser
x = sf.read(sys.argv[1], dtype="float32")[0]
d, ts = Denoiser(), []
for k in range(0, len(x) - 160, 160):
    t = time.perf_counter_ns(); d.process(x[k:k + 160]); ts.append(time.perf_counter_ns() - t)
ts = np.array(ts[100:]) / 1e3
print(np.percentile(ts, 50), np.percentile(ts, 99))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trees", nargs="+", help="name=path of a checkout")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    args = ap.parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.trees)
    work = Path(tempfile.mkdtemp(prefix="edgernn-audio-start-"))
    pin = ["taskset", "-c", str(args.cpu), sys.executable]

    def env(name):
        return dict(os.environ, PYTHONPATH=str(Path(trees[name]).resolve()),
                    EDGERNN_CACHE_DIR=str(work / f"cache-{name}"))

    def run(name, cmd) -> tuple:
        t0 = time.perf_counter()
        p = subprocess.Popen([*pin, *cmd], env=env(name), cwd=trees[name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        assert p.returncode == 0, (name, cmd)
        return time.perf_counter() - t0, ru.ru_maxrss / 1024

    res = {n: {"denoise_cli": [], "daemon": [], "hop_us": []} for n in trees}
    for name in trees:
        run(name, ["-m", "edgernn", "warmup"])
        (work / f"{name}.toml").write_text(
            f'device = "mic"\n[source]\nkind = "wav"\npath = "{WAV}"\ndenoise = true\n'
            f'[[sink]]\ntype = "wav"\npath = "{work / name}_daemon.wav"\n[metrics]\nlisten = ""\n')
    for _ in range(args.runs):
        for name in trees:
            (work / f"{name}.wav").unlink(missing_ok=True)
            res[name]["denoise_cli"].append(run(name, ["-m", "edgernn", "denoise", str(WAV),
                                                       "-o", str(work / f"{name}.wav"),
                                                       "--quiet"]))
            res[name]["daemon"].append(run(name, ["-m", "edgernn", "serve", "--config",
                                                  str(work / f"{name}.toml")]))
            p = subprocess.run([*pin, "-c", HOP, str(WAV)], env=env(name), cwd=trees[name],
                               capture_output=True, text=True, check=True)
            res[name]["hop_us"].append(tuple(map(float, p.stdout.split())))
    med = {n: {k: [round(statistics.median(v[j] for v in r[k]), 3) for j in range(2)]
               for k in r} for n, r in res.items()}
    for n, m in med.items():
        print(f"{n:>8}: edgernn denoise {m['denoise_cli'][0]:.3f} s, peak {m['denoise_cli'][1]:.1f}"
              f" MB; daemon {m['daemon'][0]:.3f} s, peak {m['daemon'][1]:.1f} MB; "
              f"Denoiser.process p50 {m['hop_us'][0]:.1f} us, p99 {m['hop_us'][1]:.1f} us")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "audio_start.json").write_text(json.dumps(
        {"command": "python bench/audio_start.py " + " ".join(argv or sys.argv[1:]),
         "loadavg_at_end": os.getloadavg(), "cpu": args.cpu, "medians": med, "runs": res},
        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
