"""`Pipeline`: stream audio through a model that takes samples and gives samples.

A model whose ``audio`` section (:data:`edgernn.model.model.AUDIO`) says
``"input": "samples", "output": "samples"`` holds its whole front end inside
(framing, :class:`edgernn.RFFT`, the mask, :class:`edgernn.IRFFT`, overlap-add:
``converters.presets`` builds DTLN's and NSNet2's this way): each step takes one
hop of samples and gives one hop. This class only cuts any block size into
hops, so that ``process`` maps ``n`` samples to ``n`` samples, delayed by
`latency`. It has the interface of :class:`~edgernn.audio.Denoiser`, and
:func:`open_denoiser` picks the one a model needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError
from .denoiser import BUNDLED, Denoiser
from .hops import HopStream


class Pipeline(HopStream):
    """Streaming denoising with a samples-in, samples-out model.

    Parameters
    ----------
    model : edgernn.Model, str or Path
        With an ``audio`` section of kind ``"denoise"``, input and output ``"samples"``.
    math : {"fast", "exact"}, optional

    Attributes
    ----------
    sample_rate, hop : int
    latency : int
        Output = input delayed by this many samples: the model's own latency plus
        ``hop - 1`` of buffering.
    nonfinite_samples : int
        NaN/inf input samples seen so far (each replaced by 0).
    """

    def __init__(self, model, math: str = "fast", attenuation_limit_db=None):
        self.attenuation_limit_db = attenuation_limit_db   # (None only)
        self.math = math
        self._bind(model)
        self.reset()

    def _bind(self, model) -> None:
        if isinstance(model, (str, Path)):
            from ..model import load

            model = load(model)
        audio = getattr(model, "audio", None) or {}
        if audio.get("input") != "samples" or audio.get("output") != "samples":
            raise EdgeRNNError(f"a sample pipeline needs a model whose audio section takes and "
                               f"gives samples, this one has {audio or 'none'}")
        self.model, self.audio = model, audio
        self.sample_rate, self.hop = audio["sample_rate"], audio["hop"]
        self.latency = audio.get("latency", 0) + self.hop - 1
        self.stream = model.stream(math=self.math)
        self._y = np.zeros(self.hop, np.float32)

    #: a samples-in, samples-out model has no band gains nor VAD to report
    gains = None
    vad = None

    @property
    def front_tag(self) -> str:
        """What a model swapped in must share for the audio to go on without a gap."""
        return f"samples/{self.sample_rate}Hz/hop{self.hop}/latency{self.latency}"

    @property
    def attenuation_limit_db(self):
        return None

    @attenuation_limit_db.setter
    def attenuation_limit_db(self, value):
        if value is not None:
            raise EdgeRNNError("an attenuation limit (--attenuation-limit) applies to band-gain "
                               "models; this model computes its output samples itself")

    def swap_model(self, model, math: str | None = None) -> None:
        """Continue with another model of the same rate, hop and latency (no gap)."""
        other = Pipeline.__new__(Pipeline)
        other.math = self.math if math is None else math
        other._bind(model)
        if (other.sample_rate, other.hop, other.latency) != (self.sample_rate, self.hop,
                                                             self.latency):
            raise EdgeRNNError(f"the new model runs at {other.sample_rate} Hz, hop {other.hop},"
                               f" latency {other.latency}; this pipeline at {self.sample_rate}"
                               f" Hz, hop {self.hop}, latency {self.latency}")
        self.model, self.audio, self.stream, self.math = (other.model, other.audio,
                                                          other.stream, other.math)

    def reset(self) -> None:
        """Forget all audio: the model's state and the buffers start from silence."""
        self.stream.reset()
        self._start()

    def _hop(self, x) -> np.ndarray:
        y = self.stream.step(x, out=self._y)
        if self.frames < self.audio.get("warmup_hops", 0):  # (self.frames counts the done)
            keep = set(self.audio.get("warmup_keep", ()))
            st = self.stream.get_state()
            self.stream.set_state(type(st)(st.names, tuple(
                a if n in keep else np.zeros_like(a) for n, a in zip(st.names, st.arrays,
                                                                     strict=True))))
            y[:] = 0.0
        return y


def open_denoiser(model=None, attenuation_limit_db=None, math: str = "fast"):
    """The streaming denoiser a model needs: a :class:`Pipeline` for a samples-in,
    samples-out model (its ``audio`` section), else a band-gain :class:`Denoiser`
    (the bundled model when ``model`` is None)."""
    if model is None:
        model = BUNDLED
    if isinstance(model, (str, Path)):
        from ..model import load

        path = Path(model)
        if not path.exists():
            raise EdgeRNNError(f"{path}: no such model file")
        model = load(path)
    audio = getattr(model, "audio", None) or {}
    if audio.get("kind") == "vad":
        raise EdgeRNNError(f"{audio.get('preset') or 'this model'} is a voice activity "
                           f"detector; use edgernn vad")
    if audio.get("input") == "samples":
        return Pipeline(model, math=math, attenuation_limit_db=attenuation_limit_db)
    return Denoiser(model, attenuation_limit_db=attenuation_limit_db, math=math)
