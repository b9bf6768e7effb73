"""A full disk under the file and WAV sinks, and SIGKILL during a WAV write (issue #21).

The full disk is a small tmpfs mounted in the test's folder when the test runs as
root (else a file-size limit, RLIMIT_FSIZE, on the daemon)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess

import numpy as np
import soundfile as sf

from edgernn.audio import Denoiser
from tests.serve_helpers import ROOT, Daemon, wait_until

H = 160
DEMO = ROOT / "edgernn" / "data" / "denoise_demo.wav"


def _config(tmp_path, out_dir, realtime: bool) -> object:
    x, rate = sf.read(DEMO, dtype="float32")
    sf.write(tmp_path / "noisy.wav", x[:3 * rate], rate, subtype="FLOAT")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "mic-1"\n[source]\nkind = "wav"\npath = "noisy.wav"\n'
                   f'denoise = true\nrealtime = {str(realtime).lower()}\n'
                   f'[[sink]]\ntype = "wav"\npath = "{out_dir}/clean.wav"\n'
                   f'[[sink]]\ntype = "file"\npath = "{out_dir}/reports.jsonl"\n'
                   f'[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n'
                   f'[denoise]\nreport_every = 5\n')
    return cfg


def _offline(tmp_path) -> np.ndarray:
    x = sf.read(tmp_path / "noisy.wav", dtype="float32")[0]
    return Denoiser().process(x[:len(x) // H * H])


class _SmallDisk:
    """A ``size``-byte tmpfs at ``path`` (root), else a file-size limit for the daemon."""

    def __init__(self, path, size: int) -> None:
        path.mkdir()
        self.path, self.size = path, size
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True) if os.geteuid() == 0 else None
        self.mounted = out is not None and out.returncode == 0

    def preexec(self):
        if self.mounted:
            return None
        size = self.size
        return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def test_full_disk_counts_errors_serves_other_sinks_and_leaves_no_corrupt_file(tmp_path):
    disk = _SmallDisk(tmp_path / "disk", 64 * 1024)  # ~1 s of the 3 s of float audio
    cfg = _config(tmp_path, disk.path, realtime=False)
    try:
        d = Daemon(cfg, preexec_fn=disk.preexec())
        d.run_to_end(120)
        files = sorted(p.name for p in disk.path.iterdir())
        y, rate = sf.read(disk.path / "clean.wav", dtype="float32")  # a valid WAV
        lines = (disk.path / "reports.jsonl").read_bytes().split(b"\n")
    finally:
        disk.close()
    s = d.summary()
    assert files == ["clean.wav", "reports.jsonl"]
    assert s["accepted"] == s["answered_ok"] == 300 and s["unaccounted"] == 0
    assert s["sinks"]["stdout"] == {"delivered": 60, "dropped": 0, "pending": 0}
    wav, rep = s["sinks"]["wav0"], s["sinks"]["file1"]
    assert wav["dropped"] > 0 and wav["delivered"] + wav["dropped"] == 300
    assert rep["delivered"] + rep["dropped"] == 60
    assert "write failed" in d.stderr() and "Traceback" not in d.stderr()
    # whole blocks: each hop is the denoised audio bit for bit, or silence where a write
    # failed and a later one worked (space freed by the file sink cutting its own write)
    assert rate == 16000 and 0 < len(y) < 300 * H and len(y) % H == 0
    want = _offline(tmp_path)[:len(y)].reshape(-1, H)
    same = (y.reshape(-1, H) == want).all(axis=1)
    silent = (y.reshape(-1, H) == 0).all(axis=1)
    assert (same | silent).all() and same[0] and same[-1]
    assert same.sum() == wav["delivered"]  # every hop written is in its place
    assert lines[-1] == b""  # whole lines only, each a report the stdout sink also has
    assert len(lines) - 1 == rep["delivered"]
    stdout = {(r["stream"], r["n"]) for r in d.results()}
    assert all((r["stream"], r["n"]) in stdout for r in map(json.loads, lines[:-1]))


def test_sigkill_during_a_wav_write_leaves_a_readable_wav_up_to_the_last_write(tmp_path):
    cfg = _config(tmp_path, tmp_path, realtime=True)
    d = Daemon(cfg)
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) >= 20, 30, "1 s of audio (20 reports)")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
    finally:
        d.kill()
    d._reader.join(5)
    assert not (tmp_path / "clean.wav").exists()  # renamed into place only when complete
    tmp = [p for p in tmp_path.iterdir() if p.name.startswith(".clean.wav.")]
    assert len(tmp) == 1
    y, rate = sf.read(tmp[0], dtype="float32")
    assert rate == 16000 and len(y) >= 20 * 5 * H - 10 * H and len(y) % H == 0
    np.testing.assert_array_equal(y, _offline(tmp_path)[:len(y)])
    # the header states the true lengths (libsndfile reads a stale one leniently; a strict
    # reader trusts it): RIFF size and the data chunk's size match the file
    raw = tmp[0].read_bytes()
    assert raw[:4] == b"RIFF" and int.from_bytes(raw[4:8], "little") == len(raw) - 8
    at = raw.index(b"data")
    assert int.from_bytes(raw[at + 4:at + 8], "little") == len(y) * 4 == len(raw) - at - 8


def test_wav_sink_fills_audio_a_full_disk_lost_with_silence_once_it_can_write(tmp_path):
    from edgernn_serve.audio import AudioFormat
    from edgernn_serve.sinks.audio import WavSink

    disk = _SmallDisk(tmp_path / "disk", 64 * 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if disk.mounted:  # 24 KiB left, then 64 again
        (disk.path / "filler").write_bytes(b"\0" * 40 * 1024)

        def free():
            (disk.path / "filler").unlink()
    else:  # no tmpfs: this process may write files of 24 KiB at most, then any size
        resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, hard))

        def free():
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        s = WavSink("w", "d", 100, disk.path / "out.wav", "FLOAT", AudioFormat(16000, 1, 16000, H))
        blocks = [np.full((800, 1), 0.01 * (k + 1), np.float32) for k in range(12)]
        ok = []
        for k, b in enumerate(blocks):
            if k == 10:
                free()  # room again
            try:
                s.write_rows(b)
                ok.append(k)
            except OSError as e:
                assert "out.wav" in str(e)
        s.file.close()
        y = sf.read(s.tmp, dtype="float32")[0].reshape(-1, 800)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        disk.close()
    assert ok[-2:] == [10, 11] and len(ok) < 10  # some failed, then it wrote again
    assert len(y) == 12  # the failed blocks became silence: the timeline is kept
    for k in range(12):
        assert (y[k] == (blocks[k][:, 0] if k in ok else 0)).all(), k
