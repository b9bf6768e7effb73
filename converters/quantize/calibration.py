"""Calibration data: loading, checking, the held-out split and the settling check.

Accepted forms (``input_size`` ``I`` of the model):

- an array ``float[T, I]`` (one sequence) or ``float[N, T, I]`` (N sequences);
- an iterable of sequences ``float[T, I]`` (lengths may differ);
- a path: ``.npy`` (either array form), ``.npz`` (every array in it, in name
  order, each in either form); other suffixes through :data:`LOADERS`
  (``.wav`` goes through the model's audio front end once one is registered);
- for models that start with an Embedding: int token ids ``[T]`` / ``[N, T]``.

Every problem raises :class:`CalibrationError` (a ``ModelFormatError``) that
names what was expected and what arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgernn.errors import ModelFormatError


class CalibrationError(ModelFormatError):
    """Calibration or held-out data is empty, malformed, non-finite or too short."""


def _wav_loader(path: Path, model):
    raise CalibrationError(
        f"calibration from {path.name}: .wav needs the model's audio front end "
        f"(edgernn.audio), and none is registered; pass feature frames as .npy "
        f"float32 (T, {model.input_size}) or register one with "
        f"converters.quantize.calibration.LOADERS['.wav'] = fn(path, model) -> [arrays]")


#: suffix -> fn(path, model) -> list of sequences; the hook for audio front ends
LOADERS: dict[str, Callable] = {".wav": _wav_loader}


def _describe(a) -> str:
    a = np.asarray(a)
    return f"{a.dtype} array of shape {a.shape}"


def _from_path(path: Path, model, what: str) -> list:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CalibrationError(f"{what}: {str(path)!r} is not a file")
    if suffix in LOADERS:
        return list(LOADERS[suffix](path, model))
    try:
        if suffix == ".npy":
            return [np.load(path, allow_pickle=False)]
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise CalibrationError(f"{what}: {path.name} holds no arrays")
                return [z[k] for k in sorted(z.files)]
    except (OSError, ValueError, EOFError) as exc:
        raise CalibrationError(f"{what}: cannot read {path.name}: {exc}") from exc
    raise CalibrationError(f"{what}: {path.name}: expected a .npy or .npz file"
                           f"{' or ' + ', '.join(sorted(LOADERS)) if LOADERS else ''}, "
                           f"got suffix {suffix!r}")


def _split(arr, tokens: bool) -> list:
    """One array -> its sequences (an [N, T, I] / token [N, T] batch is split)."""
    arr = np.asarray(arr)
    if arr.ndim == (2 if tokens else 3):
        return list(arr)
    return [arr]


def load_sequences(data, model, what: str = "calibration") -> list[np.ndarray]:
    """The sequences of ``data`` (any accepted form), checked against ``model``.

    Returns
    -------
    list of float32[T, I] (int64[T] token ids for Embedding models), each T >= 1
    """
    tokens = bool(getattr(model, "num_tokens", 0))
    if data is None:
        raise CalibrationError(f"{what}: no data given (expected float32 (T, "
                               f"{model.input_size}) sequences, a .npy or a .npz)")
    if isinstance(data, (str, Path)):
        raw = _from_path(Path(data), model, what)
    elif isinstance(data, np.ndarray):
        raw = [data]
    elif isinstance(data, Iterable):
        raw = list(data)
    else:
        raise CalibrationError(f"{what}: expected an array, an iterable of arrays or a "
                               f"path, got {type(data).__name__}")
    seqs = []
    for a in raw:
        seqs.extend(_split(a, tokens))
    if not seqs:
        raise CalibrationError(f"{what}: no sequences (expected at least one "
                               f"(T, {model.input_size}) array)")
    return [_check(s, k, model, tokens, what) for k, s in enumerate(seqs)]


def _check(s, k, model, tokens, what) -> np.ndarray:
    try:
        a = np.asarray(s)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{what}: sequence {k} is not an array: {exc}") from exc
    if tokens:
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise CalibrationError(f"{what}: sequence {k}: expected int token ids of shape "
                                   f"(T,), got {_describe(a)}")
        if a.size and (a.min() < 0 or a.max() >= model.num_tokens):
            raise CalibrationError(f"{what}: sequence {k}: token ids must lie in "
                                   f"[0, {model.num_tokens}), got [{a.min()}, {a.max()}]")
        want = "(T,) token ids"
    else:
        if a.dtype.kind not in "fiu" or a.ndim != 2 or a.shape[1] != model.input_size:
            raise CalibrationError(f"{what}: sequence {k}: expected a float array of shape "
                                   f"(T, {model.input_size}) or (N, T, {model.input_size}), "
                                   f"got {_describe(a)}")
        a = a.astype(np.float32)
        bad = ~np.isfinite(a)
        if bad.any():
            t, f = (int(v) for v in np.argwhere(bad)[0])
            raise CalibrationError(f"{what}: sequence {k} holds non-finite values "
                                   f"({int(bad.sum())} of them; the first, {a[t, f]!r}, at "
                                   f"step {t}, feature {f}); expected finite float32 values")
        want = f"(T, {model.input_size})"
    if a.shape[0] == 0:
        raise CalibrationError(f"{what}: sequence {k} is empty: expected {want} with T >= 1, "
                               f"got {_describe(a)}")
    return np.ascontiguousarray(a)


def carve_held_out(seqs: list, fraction: float = 0.2):
    """(calibration, held_out, description): the last ``fraction`` of the sequences, or
    of the time steps when there is only one sequence."""
    if len(seqs) >= 2:
        n = max(1, int(round(len(seqs) * fraction)))
        return seqs[:-n], seqs[-n:], f"carved off: the last {n} of {len(seqs)} sequences"
    (s,) = seqs
    cut = int(round(len(s) * (1 - fraction)))
    if cut < 1 or cut >= len(s):
        return seqs, [], "none: one sequence too short to split"
    return [s[:cut]], [s[cut:]], (f"carved off: the last {len(s) - cut} of the "
                                  f"{len(s)} steps of the one sequence")


def settle_steps(model, seqs, tol: float = 1e-3) -> int | None:
    """Steps after which the float model's outputs no longer depend on its initial
    state, on the longest sequence (None: stateless or whole-sequence model).

    Two streams, one from zero state and one from a random state (uniform in
    [-1, 1]), run over the same sequence; the result is the first step from which
    their outputs stay within ``tol`` (relative to the output range).

    Raises
    ------
    CalibrationError
        When they never agree, or agree only after the first half of the sequence:
        the data is too short for the model's state to settle.
    """
    if not model.streamable or not model.state_layout():
        return None
    from edgernn.ir.state import StreamState

    seq = max(seqs, key=len)
    a = model.stream()
    ref = a.run(seq) if model.return_sequences else _rows(a, seq)
    b = model.stream()
    st = b.get_state()
    rng = np.random.default_rng(0)
    b.set_state(StreamState(st.names, tuple(rng.uniform(-1, 1, x.shape).astype(np.float32)
                                            for x in st.arrays)))
    other = b.run(seq) if model.return_sequences else _rows(b, seq)
    scale = max(float(np.abs(ref).max()), 1e-6)
    diff = np.abs(ref - other).max(axis=1) / scale
    late = np.nonzero(diff > tol)[0]
    settle = 0 if late.size == 0 else int(late[-1]) + 1
    T = len(seq)
    if settle >= T:
        raise CalibrationError(
            f"calibration: too short for the model's state to settle: two streams started "
            f"from different states still differ by {diff[-1] * scale:.3g} (relative "
            f"{diff[-1]:.2g} > {tol:g}) after all {T} steps of the longest sequence; give "
            f"longer sequences")
    if 2 * settle > T:
        raise CalibrationError(
            f"calibration: too short for the model's state to settle: the state settles "
            f"after {settle} steps but the longest sequence has {T}; expected sequences "
            f"of at least {2 * settle} steps (twice the settling time)")
    return settle


def _rows(stream, seq):
    return np.stack([stream.step(x) for x in seq])
