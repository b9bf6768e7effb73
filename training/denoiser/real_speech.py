"""Real recorded speech for the denoiser corpus, from Debian packages (training only).

Two sources (licences and sizes in this folder's README.md):

- ``hedgewars``: the voice packs of Hedgewars (package ``hedgewars-data``,
  ``/usr/share/games/hedgewars/Data/Sounds/voices/<pack>/*.ogg``): short
  exclamations by different speakers in English, Spanish, Polish, Russian and
  Ukrainian, 44.1/48 kHz, full band. The ``Robot`` pack (processed voice) is left out.
- ``fotaq``: the talkie speech of Flight of the Amazon Queen (package
  ``flight-of-the-amazon-queen``, ``queen.1c``): 6745 lines of dialogue by
  voice actors, stored as MP3 at 11025 Hz, so nothing above 5.5 kHz. Training
  marks the bands above `CUTOFF_HZ` as "no target" for examples of this source.

Neither holds the recordings the bench evaluates on (ALSA's speaker-test voice
and KTuberling's words). Each utterance is trimmed of leading and trailing
silence, peak-normalised and resampled to 16 kHz.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import speech  # a sibling script module, as train.py imports it

RATE = 16000
HEDGEWARS = Path("/usr/share/games/hedgewars/Data/Sounds/voices")
HEDGEWARS_SKIP = {"Robot"}
FOTAQ = Path("/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c")
CUTOFF_HZ = {"hedgewars": None, "fotaq": 4500.0}
APT = {"hedgewars": "hedgewars-data", "fotaq": "flight-of-the-amazon-queen"}


def _trim(x: np.ndarray, rate: int) -> np.ndarray:
    """x resampled to 16 kHz, trimmed to its active part (+-50 ms), peak-normalised."""
    if rate != RATE:
        x = soxr.resample(x, rate, RATE, quality="HQ")
    return speech.trim_active(x - x.mean(), RATE // 5)


def hedgewars_clips():
    """(name, float32 samples, rate) of every Hedgewars voice clip but the skipped packs."""
    for pack in sorted(p for p in HEDGEWARS.iterdir() if p.is_dir()):
        if pack.name in HEDGEWARS_SKIP:
            continue
        for f in sorted(pack.glob("*.ogg")):
            x, sr = sf.read(f, dtype="float32", always_2d=True)
            yield f"{pack.name}/{f.stem}", x.mean(1), sr


def fotaq_clips():
    """(name, float32 samples, rate) of every speech file (``*.SB``) in ``queen.1c``.

    The file is ScummVM's rebuilt resource bundle: ``QTBL``, a 6-byte version,
    2 bytes, a compression byte (1 = MP3), a big-endian uint16 entry count, then
    per entry a 12-byte name, a bundle byte, and big-endian uint32 offset and size.
    """
    blob = FOTAQ.read_bytes()
    if blob[:4] != b"QTBL" or blob[12] != 1:
        raise ValueError(f"{FOTAQ}: expected a QTBL bundle with MP3 speech, got header "
                         f"{blob[:13]!r}")
    (count,) = struct.unpack(">H", blob[13:15])
    pos = 15
    for _ in range(count):
        name = blob[pos:pos + 12].split(b"\0")[0].decode("ascii")
        off, size = struct.unpack(">II", blob[pos + 13:pos + 21])
        pos += 21
        if name.endswith(".SB"):
            x, sr = sf.read(io.BytesIO(blob[off:off + size]), dtype="float32", always_2d=True)
            yield name, x.mean(1), sr


def build(source: str):
    """(int16 speech, int64 offsets, names) of one source, every clip in file order."""
    clips = {"hedgewars": hedgewars_clips, "fotaq": fotaq_clips}[source]
    path = HEDGEWARS if source == "hedgewars" else FOTAQ
    if not path.exists():
        raise SystemExit(f"{path} is missing: apt-get install {APT[source]}")
    chunks, offsets, names = [], [0], []
    for name, x, sr in clips():
        y = _trim(x, sr)
        if y.size:
            chunks.append(np.round(y * 32000).astype(np.int16))
            offsets.append(offsets[-1] + y.size)
            names.append(name)
    return np.concatenate(chunks), np.array(offsets, np.int64), np.array(names)
