"""Where a denoising source's audio goes: a WAV file, or a sound card.

Both take the denoised hops of every stream (stream c is channel c), resample
them back to the source's rate when the model runs at another one (soxr), and
interleave the channels.

- :class:`WavSink` (``type = "wav"``) writes from its own thread into a
  temporary file next to ``path`` (``.<name>.<random>.tmp``) and, when the
  daemon stops, closes it (the header then holds the final length), syncs it
  and renames it to ``path``: ``path`` is only ever a complete, valid file.
  An existing ``path`` is replaced at that moment. The header is updated after
  every write, so if the daemon is killed the temporary file is a valid WAV of
  everything written so far; a write that fails (a full disk) is cut off again
  and its audio counted dropped, so the file never holds half a block; once
  writing works again the lost audio becomes silence (at most 60 s of it).
- :class:`PlaybackSink` (``type = "audio"``) plays through sounddevice. Hops
  wait in a buffer of at most ``buffer_ms``; when the device wants samples the
  buffer does not hold, it plays silence and counts an underrun (once playing
  has begun); when the buffer overflows the oldest audio is dropped (counted in
  10 ms hops per stream) and the event counted as an overrun.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np

from edgernn_serve.audio import device_name, import_sounddevice, import_soxr
from edgernn_serve.schema import DEVICE, LATENCY, ConfigError, one_of
from edgernn_serve.sinks.base import QueuedSink, Sink

log = logging.getLogger("edgernn.serve")

SFC_SET_UPDATE_HEADER_AUTO = 0x1061  # libsndfile's sndfile.h
MAX_GAP_S = 60  # seconds of silence at most in place of audio a failed write lost
WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def _denoised_audio(t, source) -> None:
    if not source.options.get("denoise", False):
        raise t.fail("type", f"{t.data.get('type')!r} sinks take denoised audio: they need "
                             f"source.denoise = true")


def wav_schema(t, source) -> dict:
    _denoised_audio(t, source)
    o = {"path": t.path("path")}
    if o["path"] == source.options.get("path"):
        raise t.fail("path", f"is the source's input file {o['path']}; it is never "
                             f"overwritten")
    check, expect = one_of(WAV_SUBTYPES)
    o["subtype"] = t.take("subtype", str, "FLOAT", check, expect)
    return o


def playback_schema(t, source) -> dict:
    _denoised_audio(t, source)
    return {"device": t.take("device", (str, int), None, *DEVICE),
            "latency": t.take("latency", (str, int, float), "low", *LATENCY),
            "buffer_ms": t.take("buffer_ms", float, 200.0, lambda v: 20 <= v <= 60_000,
                                "20 to 60000 ms")}


class _Interleaver:
    """Hops of each stream (Results) -> rows float32[k, streams] at the output rate.

    The channels stay aligned by hop index (``Result.seq``): a hop lost upstream (a
    queue overflow, a refused frame) is replaced by silence, at most :data:`MAX_GAP`
    hops of it at a time."""

    MAX_GAP = 100

    def __init__(self, fmt) -> None:
        self.n = fmt.streams
        self.pending = [deque() for _ in range(self.n)]
        self.next_seq: dict[int, int] = {}
        self.resample = None
        if fmt.rate != fmt.model_rate:
            soxr = import_soxr(f"audio at {fmt.model_rate} Hz played or written at {fmt.rate} Hz")
            self.resample = [soxr.ResampleStream(fmt.model_rate, fmt.rate, 1, dtype="float32",
                                                 quality="HQ") for _ in range(self.n)]
            self.tail = [np.zeros(0, np.float32) for _ in range(self.n)]

    def rows(self, results) -> np.ndarray | None:
        for r in results:
            if isinstance(r.key, int) and 0 <= r.key < self.n and r.y is not None:
                gap = r.seq - self.next_seq.get(r.key, r.seq)
                if gap > 0:
                    self.pending[r.key].extend([np.zeros_like(r.y)] * min(gap, self.MAX_GAP))
                self.pending[r.key].append(r.y)
                self.next_seq[r.key] = r.seq + 1
        k = min(len(p) for p in self.pending)
        if k == 0:
            return None
        cols = [np.concatenate([p.popleft() for _ in range(k)]) for p in self.pending]
        if self.resample is not None:
            cols = [np.concatenate([t, rs.resample_chunk(c)])
                    for t, rs, c in zip(self.tail, self.resample, cols, strict=True)]
            m = min(len(c) for c in cols)
            self.tail = [c[m:] for c in cols]
            cols = [c[:m] for c in cols]
        return np.stack(cols, axis=1)

    def flush(self) -> np.ndarray | None:
        """The resampler's last samples (at the end of the audio), or None."""
        if self.resample is None:
            return None
        empty = np.zeros(0, np.float32)
        cols = [np.concatenate([t, rs.resample_chunk(empty, last=True)])
                for t, rs in zip(self.tail, self.resample, strict=True)]
        m = min(len(c) for c in cols)
        return np.stack([c[:m] for c in cols], axis=1) if m else None


class WavSink(QueuedSink):
    """The denoised audio into a WAV file, renamed into place at the end (module docstring)."""

    type = "wav"
    audio = True

    @classmethod
    def build(cls, conf, ctx) -> WavSink:
        o = conf.options
        return cls(conf.name, ctx.device, o["buffer"], o["path"], o["subtype"], ctx.audio)

    def __init__(self, name, device, buffer, path, subtype, fmt) -> None:
        super().__init__(name, device, buffer)
        try:
            import soundfile
        except (ImportError, OSError) as e:
            raise ConfigError(f"sink {name}: type 'wav' needs the soundfile package (pip "
                              f"install 'edgernn[audio]'): {e}") from None
        self.path, self.fmt = Path(path), fmt
        self.xruns: Counter = Counter()
        self.inter = _Interleaver(fmt)
        self.frames = 0
        self.lost = 0  # frames of failed writes since the last good one
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                       dir=self.path.parent)
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        except OSError as e:
            raise ConfigError(f"sink {name}: cannot write next to {self.path}: "
                              f"{e.strerror or e}") from None
        self.tmp = Path(tmp)
        try:
            self.file = soundfile.SoundFile(tmp, "w", samplerate=fmt.rate,
                                            channels=fmt.streams, subtype=subtype, format="WAV")
        except (RuntimeError, ValueError) as e:
            self.tmp.unlink(missing_ok=True)
            raise ConfigError(f"sink {name}: cannot write a WAV file of {fmt.streams} "
                              f"channel(s) at {fmt.rate} Hz, {subtype}: {e}") from None
        # the header follows every write: a crash leaves a valid WAV of what was written
        soundfile._snd.sf_command(self.file._file, SFC_SET_UPDATE_HEADER_AUTO,
                                  soundfile._ffi.NULL, 1)
        self.clip = not subtype.startswith(("FLOAT", "DOUBLE"))
        self._done = False

    def write(self, batch) -> bool:
        rows = self.inter.rows(batch)
        if rows is not None:
            self.write_rows(rows)
        return True

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``rows``; all of them or, on a failure (a full disk), none (raises).

        Rows that failed are replaced by silence before the next rows that can be
        written (at most :data:`MAX_GAP_S` of it per gap), so the file keeps the
        source's timeline."""
        n = self.frames
        try:
            gap = min(self.lost, int(MAX_GAP_S * self.fmt.rate))
            for i in range(0, gap, self.fmt.rate):  # a second of silence per write
                self.file.write(np.zeros((min(self.fmt.rate, gap - i), rows.shape[1]),
                                         np.float32))
            self.file.write(np.clip(rows, -1.0, 1.0) if self.clip else rows)
            if self.file.tell() != n + gap + rows.shape[0]:
                raise OSError("short write (disk full?)")
        except Exception as e:
            try:  # back to the last whole write; the header says so (updated per write)
                self.file.truncate(n)
                self.file.seek(n)
            except Exception:  # noqa: BLE001 - the write's error is the one to report
                pass
            self.lost += rows.shape[0]
            raise OSError(f"{self.tmp}: {e}") from None
        self.frames, self.lost = n + gap + rows.shape[0], 0

    def close(self) -> None:
        super().close()
        if self._thread.is_alive():  # a slow card: the file is finished after its last write
            self._thread.join(8.0)
        if self._done:
            return
        if self._thread.is_alive():  # never finish the file under a write still running
            log.error("sink %s: the writer is still busy; %s not finished (partial audio in %s)",
                      self.name, self.path, self.tmp)
            return
        self._done = True
        try:
            rows = self.inter.flush() if self.frames else None
            if rows is not None:
                try:
                    self.write_rows(rows)
                except Exception as e:  # noqa: BLE001 - a full disk: finish what is there
                    self.errors += 1
                    log.error("sink %s: the last %d frames were not written (%s)", self.name,
                              rows.shape[0], e)
            self.file.close()
            if self.frames == 0:  # nothing came (e.g. a failed start): leave `path` alone
                self.tmp.unlink(missing_ok=True)
                log.info("sink %s: no audio; %s not written", self.name, self.path)
                return
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
            log.info("sink %s: wrote %s (%d frames, %.2f s at %d Hz)", self.name, self.path,
                     self.frames, self.frames / self.fmt.rate, self.fmt.rate)
        except (OSError, RuntimeError) as e:
            log.error("sink %s: could not finish %s (%s); the audio is in %s", self.name,
                      self.path, e, self.tmp)


class PlaybackSink(Sink):
    """The denoised audio to a sound card (module docstring)."""

    type = "audio"
    audio = True

    @classmethod
    def build(cls, conf, ctx) -> PlaybackSink:
        return cls(conf.name, ctx.device, conf.options, ctx.audio)

    def __init__(self, name, device, o: dict, fmt) -> None:
        super().__init__(name, device)
        self.sd = import_sounddevice(f"sink {name} (type 'audio')")
        self.o, self.fmt = o, fmt
        self.device_name = device_name(self.sd, o["device"], "output", fmt.streams, fmt.rate,
                                       f"sink {name}: cannot play")
        self.inter = _Interleaver(fmt)
        self.cap = max(1, int(o["buffer_ms"] * fmt.rate / 1000))
        self.buf: deque = deque()  # float32[k, streams] blocks
        self.level = 0
        self.started = False
        self.lock = threading.Lock()
        self.xruns: Counter = Counter()
        self.stream = None

    def start(self) -> None:
        try:
            self.stream = self.sd.OutputStream(
                samplerate=self.fmt.rate, channels=self.fmt.streams, dtype="float32",
                device=self.o["device"], latency=self.o["latency"], callback=self._callback,
                blocksize=max(1, self.fmt.rate // 100))
            self.stream.start()
        except (self.sd.PortAudioError, ValueError) as e:
            raise ConfigError(f"sink {self.name}: cannot open {self.device_name}: {e}") from None
        log.info("sink %s: playing on %s at %d Hz", self.name, self.device_name, self.fmt.rate)

    def emit(self, results) -> None:
        rows = self.inter.rows(results)
        if rows is None:
            return
        with self.lock:
            self.buf.append(rows)
            self.level += rows.shape[0]
            self.delivered += len(results)
            excess = self.level - self.cap
            if excess > 0:  # full: the oldest audio goes
                self.xruns["overruns"] += 1
                self.dropped += self._hops(excess)
                self.level -= excess
                while excess:
                    head = self.buf[0]
                    if head.shape[0] <= excess:
                        self.buf.popleft()
                        excess -= head.shape[0]
                    else:
                        self.buf[0], excess = head[excess:], 0

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.xruns["underruns"] += 1
        i = 0
        with self.lock:
            while i < frames and self.buf:
                head = self.buf[0]
                take = min(frames - i, head.shape[0])
                outdata[i:i + take] = head[:take]
                if take == head.shape[0]:
                    self.buf.popleft()
                else:
                    self.buf[0] = head[take:]
                self.level -= take
                i += take
            if i:
                self.started = True
            if i < frames:
                outdata[i:] = 0.0
                if self.started:
                    self.xruns["underruns"] += 1

    def _hops(self, rows: int) -> int:
        """Samples per channel -> results (10 ms hops of each stream), rounded up."""
        return -(-rows // max(1, self.fmt.rate // 100)) * self.fmt.streams

    @property
    def pending(self) -> int:
        return self._hops(self.level)

    def flush(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        while self.level and self.stream is not None and self.stream.active \
                and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending

    def close(self) -> None:
        s, self.stream = self.stream, None
        if s is not None:
            try:
                s.stop()
                s.close()
            except self.sd.PortAudioError as e:
                log.debug("sink %s: closing: %s", self.name, e)
        with self.lock:
            self.dropped += self.pending
            self.buf.clear()
            self.level = 0
