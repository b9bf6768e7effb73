"""`Denoiser`: stream audio through the front end and a band-gain model.

>>> from edgernn.audio import Denoiser
>>> d = Denoiser()                       # the bundled int8 model, 16 kHz
>>> clean = d.process(noisy_block)       # float32[n] -> float32[n], any n  # doctest: +SKIP

A model works here when it maps the front end's features (float32[2 B + 1],
see `frontend`) to B band gains in [0, 1]. Graph models with several outputs
(``model.outputs``) give their gains through the output named ``"gains"``
(else the first output) and a voice-activity probability through ``"vad"``
when present. The sample rate comes from the model's provenance
(``"audio.sample_rate"``) or the ``sample_rate`` argument (default 16000).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError
from .frontend import FrontEnd, FrontEndConfig
from .hops import HopStream

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "denoiser.ernn"


def _output_slices(model) -> dict:
    outs = getattr(model, "outputs", None)
    if not outs:
        return {"output": slice(0, model.output_size)}
    slices = getattr(model, "output_slices", None)
    if slices:
        return dict(slices)
    res, start = {}, 0
    for name, size in outs:
        res[name] = slice(start, start + size)
        start += size
    return res


class Denoiser(HopStream):
    """Streaming noise suppression with band gains predicted by an edgernn model.

    Parameters
    ----------
    model : edgernn.Model, str or Path, optional
        The gain model (or a path to its ``.ernn`` file); the bundled model if omitted.
    attenuation_limit_db : float, optional
        Never attenuate a band by more than this many dB (None: no limit). Lower
        values keep more of the noise and more of the speech.
    sample_rate : int, optional
        Rate the model was trained at, when its provenance does not record it.
    math : {"fast", "exact"}, optional
        The model's activation math (see `Model.stream`).

    Attributes
    ----------
    sample_rate : int
    latency : int
        Output = input delayed by this many samples (unity gains reproduce it exactly).
    vad : float or None
        Voice-activity probability of the last frame, None if the model has no VAD output.
    gains : float32[B] or None
        The model's band gains for the last frame (before the attenuation floor and
        clipping to [0, 1]); None before the first frame. A view, overwritten per frame.
    nonfinite_samples : int
        NaN/inf input samples seen so far (each replaced by 0).
    """

    def __init__(self, model=None, attenuation_limit_db: float | None = None,
                 sample_rate: int | None = None, math: str = "fast"):
        self.math = math
        self._bind(model, sample_rate)
        self.frontend = FrontEnd(self.cfg)
        self.attenuation_limit_db = attenuation_limit_db
        self.reset()

    def _bind(self, model, sample_rate) -> None:
        """Load and check ``model``; set the model, its stream and the sizes."""
        if model is None or isinstance(model, (str, Path)):
            from ..model import load

            path = BUNDLED if model is None else Path(model)
            if model is None and not path.exists():
                raise EdgeRNNError(f"the bundled denoiser model {path} is missing from this "
                                   f"installation")
            model = load(path)
        self.model = model
        prov = getattr(model, "provenance", None) or {}
        rate = prov.get("audio.sample_rate", sample_rate or 16000)
        if sample_rate is not None and int(sample_rate) != int(rate):
            raise EdgeRNNError(f"the model was trained at {rate} Hz (its provenance says so), "
                               f"got sample_rate={sample_rate}")
        n_in = model.input_size
        if getattr(model, "num_tokens", 0) or n_in < 3 or n_in % 2 != 1:
            raise EdgeRNNError(f"a denoiser model takes 2 x bands + 1 features (an odd "
                               f"number >= 3), this model takes {n_in} inputs")
        bands = (n_in - 1) // 2
        slices = _output_slices(model)
        gname = "gains" if "gains" in slices else next(iter(slices))
        self._gains = slices[gname]
        g = self._gains.stop - self._gains.start
        if g != bands:
            raise EdgeRNNError(f"a model taking {n_in} features ({bands} bands) must output "
                               f"{bands} band gains, its output {gname!r} has {g} values")
        self._vad = slices.get("vad")
        self.cfg = FrontEndConfig(sample_rate=int(rate), num_bands=bands)
        self.sample_rate = self.cfg.sample_rate
        self.hop = self.cfg.hop
        self.latency = self.cfg.latency
        self.stream = model.stream(math=self.math)
        self._y = np.zeros(model.output_size, np.float32)

    @property
    def front_tag(self) -> str:
        """What a model swapped in must share for the audio to go on without a gap."""
        return self.cfg.tag

    def swap_model(self, model, math: str | None = None) -> None:
        """Continue the audio with another gain model (e.g. a daemon's model reload).

        The front end, the hop buffer and the output delay line are kept, so the
        output goes on without a gap; the new model starts from its initial state.
        The model is checked first: on an error nothing changes.

        Parameters
        ----------
        model : Model, str or Path
        math : {"fast", "exact"}, optional
            The new model's activation math; default: this denoiser's.

        Raises
        ------
        EdgeRNNError
            The model does not fit (feature or gain sizes, another sample rate).
        """
        check = Denoiser.__new__(Denoiser)
        check.math = self.math if math is None else math
        check._bind(model, self.sample_rate)
        if check.cfg.tag != self.cfg.tag:
            raise EdgeRNNError(f"the new model needs the front end {check.cfg.tag!r}, this "
                               f"denoiser runs {self.cfg.tag!r}")
        self.model, self.stream, self._y = check.model, check.stream, check._y
        self.math = check.math
        self._gains, self._vad = check._gains, check._vad
        self._seen = False
        self.vad = None

    @property
    def gains(self):
        return self._y[self._gains] if self._seen else None

    @property
    def attenuation_limit_db(self):
        return self._limit

    @attenuation_limit_db.setter
    def attenuation_limit_db(self, value):
        if value is None:
            self._limit, self._floor = None, 0.0
            return
        v = float(value)
        if not v >= 0.0:
            raise EdgeRNNError(f"attenuation_limit_db must be >= 0 dB (or None), got {value!r}")
        self._limit, self._floor = v, float(10.0 ** (-v / 20.0))

    def reset(self) -> None:
        """Forget all audio: state, buffers and the output delay line start from silence."""
        self.frontend.reset()
        self.stream.reset()
        self._start()
        self.vad = None
        self._seen = False

    def _hop(self, x) -> np.ndarray:
        feats = self.frontend.analyze(x)
        y = self.stream.step(feats, out=self._y)
        out = self.frontend.synthesize(y[self._gains], self._floor)
        if self._vad is not None:
            self.vad = float(y[self._vad][0])
        self._seen = True
        return out
