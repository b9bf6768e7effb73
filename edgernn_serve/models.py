"""Loading, validating and batching the served model.

:func:`load_model` hashes the file (SHA-256, reported as ``edgernn_model_info``),
loads it, and hashes it again: if the file changed meanwhile it loads again, so
the hash is always the hash of what runs. It then
steps the model once on zeros: a model that cannot step, or answers zeros with a
non-finite output, is refused before it serves a frame.

:class:`Batch` holds the state of ``n`` stream slots in one
:class:`edgernn.StreamBatch` and advances any subset of them in one native call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError

MAX_MODEL_BYTES = 1 << 30


class ModelLoadError(EdgeRNNError):
    """The model file is missing, corrupt, or fails its validation step."""


@dataclass
class ModelHandle:
    """A validated model and where it came from.

    Attributes
    ----------
    model : edgernn.Model
    id : str
        Configured model id (default: the file's stem).
    sha256 : str
        Hex SHA-256 of the file's bytes as loaded.
    path : str
    output_slices : dict or None
        ``{name: slice}`` for a model with named outputs (engine v2), else None.
    """

    model: object
    id: str
    sha256: str
    path: str
    output_slices: dict | None = None

    @property
    def info(self) -> dict:
        m = self.model
        return {"id": self.id, "sha256": self.sha256, "path": self.path,
                "input_size": m.input_size, "output_size": m.output_size}


def load_model(path, model_id: str, math: str = "fast", public_key=None) -> ModelHandle:
    """Read, hash, load and validate the model at ``path``.

    With ``public_key`` (a PEM file), the model must carry a valid signature by
    that key (``edgernn sign``), or it is refused.

    Raises
    ------
    ModelLoadError
        Naming the file and the reason (missing, corrupt, not step-able, ...).
    """

    import os
    import stat

    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelLoadError(f"model {path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelLoadError(f"model {path}: not a regular file")
    if st.st_size > MAX_MODEL_BYTES:
        raise ModelLoadError(f"model {path}: {st.st_size} bytes; a model file is at most "
                             f"{MAX_MODEL_BYTES} bytes")

    def digest() -> str:
        try:
            with open(path, "rb") as fh:
                return hashlib.sha256(fh.read()).hexdigest()
        except OSError as e:
            raise ModelLoadError(f"model {path}: cannot read: {e.strerror or e}") from None

    for _ in range(3):  # the hash must be the hash of what was loaded
        before = digest()
        try:
            model = edgernn.load(path, require_signature=public_key is not None,
                                 public_key=None if public_key is None else str(public_key))
        except EdgeRNNError as e:
            raise ModelLoadError(f"model {e}" if str(e).startswith(str(path)) else
                                 f"model {path}: {e}") from None
        except (OSError, MemoryError) as e:
            why = getattr(e, "strerror", None) or type(e).__name__
            raise ModelLoadError(f"model {path}: cannot read: {why}") from None
        if digest() == before:
            break
    else:
        raise ModelLoadError(f"model {path}: the file kept changing while it was loaded; "
                             f"replace it atomically (write a copy, then rename it)")
    if not model.streamable:
        raise ModelLoadError(f"model {path}: has a Bidirectional layer; the daemon steps "
                             f"one timestep at a time")
    try:
        stream = model.stream(math=math)
        y = stream.step(np.zeros(model.input_size, np.float32) if not model.num_tokens
                        else np.zeros(1, np.int64))
    except EdgeRNNError as e:
        raise ModelLoadError(f"model {path}: validation step failed: {e}") from None
    if y.shape != (model.output_size,) or not np.isfinite(y).all():
        raise ModelLoadError(f"model {path}: validation step on zeros gave a non-finite or "
                             f"misshaped output ({y.shape}, finite={bool(np.isfinite(y).all())})")
    slices = getattr(model, "output_slices", None)
    return ModelHandle(model, model_id, before, str(path),
                       dict(slices) if slices and len(slices) > 1 else None)


class Batch:
    """``n`` stream slots of one model; any subset steps in one native call.

    Parameters
    ----------
    model : edgernn.Model
    n : int
        Number of slots (rows).
    math : str
        "fast" or "exact".
    """

    def __init__(self, model, n: int, math: str = "fast") -> None:
        self.n = n
        self.batch = model.streams(n, math=math)
        self.tokens = model.num_tokens
        self._seen_nonfinite = np.zeros(n, np.int64)

    def step(self, X: np.ndarray, out: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Advance slots ``rows`` (int64[m], distinct) by one timestep, in one native call.

        Parameters
        ----------
        X : float32[m, input_size], C-contiguous (token models: float32[m, 1] of ids
            already checked to be integers in range)
        out : float32[m, output_size], C-contiguous, written in place
        rows : int64[m]
        """
        if self.tokens:
            X = X[:, 0].astype(np.int64)
        return self.batch.step(X, out=out, streams=rows)

    def reset(self, row: int) -> None:
        """Slot ``row`` back to the model's initial state."""
        self.batch.reset(row)
        self._seen_nonfinite[row] = self.batch.nonfinite_steps[row]

    def new_nonfinite(self, rows: np.ndarray) -> np.ndarray:
        """Bool[m]: which of ``rows`` had a non-finite state reset by the engine since the
        last call (the engine zeroes that layer's state and counts it)."""
        now = self.batch.nonfinite_steps
        hit = now[rows] != self._seen_nonfinite[rows]
        self._seen_nonfinite[rows] = now[rows]
        return hit

    def state_peaks(self, rows: list) -> np.ndarray:
        """float32[len(rows)]: the largest absolute value in each slot's recurrent state
        (nan if any is nan), read in place for every slot at once."""
        return self.batch.state_absmax()[rows]
