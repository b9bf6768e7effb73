"""What the scheduler steps a wave with: :class:`ModelStepper`, one model's batch.

The :class:`~edgernn_serve.scheduler.Scheduler` owns the queue, the stream
slots, the policy and the accounting; its stepper (composition, not a subclass)
makes the batch and says how a frame is checked, a slot reset and a wave
answered. The other stepper is :class:`edgernn_serve.denoise.DenoiseStepper`
(a bank of denoisers); both offer the methods below.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from edgernn_serve.items import Result
from edgernn_serve.models import Batch, ModelHandle
from edgernn_serve.vad import configure_stage


class ModelStepper:
    """What a wave is stepped with: one model's :class:`~edgernn_serve.models.Batch`.

    The :class:`Scheduler` owns queue, slots, policy and accounting; a stepper
    makes the batch and says how a frame is checked, a slot reset and a wave
    answered. :class:`edgernn_serve.denoise.DenoiseStepper` is the other one.
    """

    audio = False  # answers go to the JSON sinks (True: to the audio sinks)
    #: the non-finite warning's words: bad output, bad state, the unit of n, what is reset
    words = ("output", "state", "step", "stream state")

    def bind(self, counters: Counter, bad: Counter) -> None:
        """The scheduler's counters, for the stepper's own figures."""
        self.c, self.bad = counters, bad

    def new_batch(self, model, n: int, math: str, options: dict) -> tuple:
        """(batch of ``n`` slots, values per input frame, values per result)."""
        return Batch(model, n, math), model.input_size, model.output_size

    def carry_over(self, batch, old: ModelHandle, new: ModelHandle) -> bool:
        """True if ``batch`` serves ``new`` as it is, streams keeping their state."""
        return old.sha256 == new.sha256

    def carry_streams(self, old_batch, batch, rows: dict, same_model: bool) -> None:
        """After a new batch: ``rows`` maps each kept stream to (old row, new row)."""

    vad_stage = None  # an audio source's [vad] stage (edgernn_serve.vad), fed the frames

    def configure(self, batch, options: dict) -> None:
        """Apply the reloadable knobs in ``options``."""
        self.vad_stage = configure_stage(self.vad_stage, options.get("vad"))

    def check(self, x: np.ndarray, in_size: int, tokens: int) -> str | None:
        """Why frame ``x`` cannot be stepped (counted in ``bad``), or None."""
        if tokens:
            if x.shape != (1,) or not (0 <= x[0] < tokens) or x[0] != int(x[0]):
                self.bad["token"] += 1
                return f"expected one token id in [0, {tokens}), got {x.tolist()[:4]}"
            return None
        if x.shape != (in_size,):
            self.bad["size"] += 1
            return f"expected {in_size} values, got {x.shape[0]}"
        if not np.isfinite(x).all():
            self.bad["nonfinite_input"] += 1
            return "input holds NaN or infinity; not stepped"
        return None

    def reset(self, batch, row: int, reason: str) -> None:
        batch.reset(row)

    def results(self, wave: list, X, Y, finite, t1: int, model_id: str) -> tuple:
        """(answers, reports) of a stepped wave: one Result per frame; no reports."""
        out = []
        for i, (it, slot) in enumerate(wave):
            err = None if finite[i] else "non-finite output; stream state reset"
            out.append(Result(it.key, it.seq, it.t, slot.n, None if err else Y[i].copy(),
                              model_id, it.origin, it.arrived_ns, t1, err))
        reports = []
        if self.vad_stage is not None:  # frames of samples (features = "samples")
            for i, (it, _) in enumerate(wave):
                reports += self.vad_stage.feed(it.key, X[i], out[i])
        return out, reports

    def final(self) -> list:
        """Results to send when the scheduler stops (a VAD stage's last ones)."""
        return [] if self.vad_stage is None else self.vad_stage.final()
