"""edgernn.audio: streaming STFT front end and noise suppression.

Runtime side: numpy + numba only (numba compiles the front end, whose code a warm
process loads from the native image without it: `edgernn.audio.frontend`).
soundfile, soxr and sounddevice (the ``audio`` extra) are imported only by the
functions that touch files or devices (`edgernn.audio.io`, ``edgernn denoise``).
"""

from .denoiser import BUNDLED, Denoiser
from .frontend import FrontEnd, FrontEndConfig
from .pipeline import Pipeline, open_denoiser
from .vad import VAD, speech_segments

__all__ = ["BUNDLED", "Denoiser", "FrontEnd", "FrontEndConfig", "Pipeline", "open_denoiser",
           "VAD", "speech_segments"]
