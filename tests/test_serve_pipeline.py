"""edgernn serve with a denoising source and a samples-in, samples-out pipeline model
(DTLN built with ``--audio dtln``): the daemon's WAV equals ``edgernn.audio.Pipeline``
run offline on the same samples, bit for bit."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from edgernn.audio import open_denoiser
from tests.real_models import model_file, speech
from tests.serve_helpers import Daemon


def test_the_daemon_denoises_with_a_dtln_pipeline_like_the_offline_pipeline(tmp_path):
    from edgernn.cli import main

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    model = tmp_path / "dtln.ernn"
    assert main(["convert", str(p1), str(p2), "--state", "input_5=tf_op_layer_stack_5",
                 "--audio", "dtln", "-o", str(model)]) == 0
    x = speech(16000)[:16000 * 2]
    rng = np.random.default_rng(2)
    x = (x + 0.01 * rng.standard_normal(x.size)).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", x, 16000, subtype="FLOAT")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "mic-1"\n[model]\npath = "{model}"\n[source]\nkind = "wav"\n'
                   f'path = "noisy.wav"\ndenoise = true\n[[sink]]\ntype = "wav"\n'
                   f'path = "clean.wav"\n[metrics]\nlisten = ""\n')
    d = Daemon(cfg)
    try:
        assert d.proc.wait(120) == 0, d.stderr()
    finally:
        d.kill()
    y, rate = sf.read(tmp_path / "clean.wav", dtype="float32")
    n = len(x) // 128 * 128
    assert rate == 16000 and y.shape[0] == n
    want = open_denoiser(model).process(x[:n])
    np.testing.assert_array_equal(y.reshape(-1)[:n], want)
