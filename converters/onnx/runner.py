"""Run a converted model the way ONNX Runtime runs its source graph.

:func:`run_like_onnx` takes the ONNX graph's feed dict and returns its output
dict, computed by the converted edgernn model (one stream per batch row), using
the I/O mapping ``model.provenance["onnx_io"]`` written by ``from_onnx``. It is
what a test or a user needs to check a conversion against ONNX Runtime, and
shows how graph state inputs/outputs map onto ``Stream.get_state/set_state``.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import ModelFormatError, UnsupportedOpError
from edgernn.ir.state import StreamState


def _io(model) -> dict:
    io = getattr(model, "provenance", {}).get("onnx_io")
    if not io:
        raise ModelFormatError("this model was not converted from ONNX (no onnx_io in its "
                               "provenance)")
    return io


def initial_state(model, batch: int = 0, feeds=None) -> StreamState:
    """The stream state the source graph starts from for batch row ``batch``.

    Parameters
    ----------
    model : edgernn.Model converted by ``from_onnx``
    batch : int
        Row of the batch axis of ``initial_h``/``initial_c`` (and state inputs).
    feeds : dict, optional
        Values of state graph inputs (``h0``, ``c0`` ...); missing ones are zero.

    Returns
    -------
    StreamState
        ``model.initial_state`` (zeros when None), overwritten by constant
        ``initial_h``/``initial_c`` that differ between batch rows (kept in
        ``onnx_io["init_state"]``) and by state inputs found in ``feeds``. Use
        with ``Stream.set_state``.
    """
    io = _io(model)
    start = model.stream().get_state()
    arrays = dict(zip(start.names, start.arrays, strict=True))
    for name, rows in io["init_state"].items():
        rows = np.asarray(rows, np.float32)
        arrays[name] = rows[batch if rows.shape[0] > 1 else 0]
    for rec in io["state_inputs"]:
        if feeds is None or rec["input"] not in feeds:
            continue
        a = np.asarray(feeds[rec["input"]], np.float32)
        index = tuple(batch if i == "B" else slice(None) if i == "F" else i
                      for i in rec["index"])
        arrays[rec["state"]] = a[index].reshape(-1)   # a cache frame: (C, F) flattened
    return StreamState(start.names, tuple(np.ascontiguousarray(arrays[n], np.float32)
                                          for n in start.names))


def _data_records(io) -> list:
    """The data inputs' records (files written before several inputs: one dict)."""
    d = io["data"]
    return [d] if isinstance(d, dict) else list(d)


def _data(rec, onestep, x):
    """One data feed as float32[B, T, F] (or int[B, T] tokens) and, for graphs
    without time and batch axes, the leading shape to restore."""
    labels = list(rec["axes"])
    tokens = rec["tokens"]
    if not tokens and "L" in labels:        # one frame [1, C, 1, F]: (C, F) per step
        f, n = labels.index("F"), labels.index("L")
        x = np.moveaxis(np.asarray(x), [f, n], [-2, -1])
        x = x.reshape(x.shape[:-2] + (-1,))
        labels = [lab for lab in labels if lab not in ("F", "L")] + ["F"]
    if not tokens and labels and labels[-1] != "F" and "F" in labels:   # [N, C, T]
        x = np.moveaxis(np.asarray(x), labels.index("F"), -1)
        labels = [lab for lab in labels if lab != "F"] + ["F"]
    lead = labels if tokens else labels[:-1]
    if "T" not in lead and "B" not in lead and not onestep:
        flat = x.reshape((1, -1) + x.shape[len(lead):])
        return flat, x.shape[:len(lead)]
    for k, lab in enumerate(lead):
        if lab not in ("T", "B") and x.shape[k] != 1:
            raise ModelFormatError(f"data input {rec['name']!r}: axis {k} ({lab!r}) must "
                                   f"have size 1, got shape {x.shape}")
    t = x.shape[lead.index("T")] if "T" in lead else 1
    b = x.shape[lead.index("B")] if "B" in lead else 1
    order = [lead.index("B")] if "B" in lead else []
    order += [lead.index("T")] if "T" in lead else []
    order += [k for k in range(len(lead)) if lead[k] not in ("T", "B")]
    order += list(range(len(lead), x.ndim))
    return np.transpose(x, order).reshape((b, t) + x.shape[len(lead):]), None


def _feeds_as_rows(io, feeds):
    """The data feeds as one array [B, T, sum of features] (or int[B, T] tokens)."""
    parts, flat_shape = [], None
    for rec in _data_records(io):
        if rec["name"] not in feeds:
            raise ModelFormatError(f"feeds: data input {rec['name']!r} is missing")
        xs, flat = _data(rec, io["onestep"], np.asarray(feeds[rec["name"]]))
        if parts and xs.shape[:2] != parts[0].shape[:2]:
            raise ModelFormatError(f"feeds: data input {rec['name']!r} has {xs.shape[:2]} "
                                   f"(batch, time) rows, the first input "
                                   f"{parts[0].shape[:2]}")
        parts.append(xs if rec["tokens"] else xs.astype(np.float32))
        flat_shape = flat
    return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)), flat_shape


def run_like_onnx(model, feeds: dict, math: str = "fast") -> dict:
    """Answer an ONNX feed dict with the converted model.

    Parameters
    ----------
    model : edgernn.Model converted by ``from_onnx`` (or loaded from its file)
    feeds : dict of graph input name -> array
        The data inputs (``[T, B, F]`` or whatever layout the graph takes), and
        optionally state inputs and ``sequence_lens``.
    math : "fast" or "exact"
        Passed to ``Model.stream`` (rational or libm tanh/sigmoid).

    Returns
    -------
    dict of graph output name -> float32 array, shaped as the ONNX graph's.
    """
    io = _io(model)
    xs, flat_shape = _feeds_as_rows(io, feeds)
    nb, nt = xs.shape[:2]
    lens = [nt] * nb
    sl = io["sequence_lens"]
    if sl:
        vals = sl.get("values") or np.asarray(feeds[sl["input"]]).tolist()
        lens = [int(v) for v in vals]
        exact = sl["exact_padding"] if "exact_padding" in sl else \
            max(sl["layers"]) == len(model.layers) - 1
        if min(lens) < nt and not exact:
            raise UnsupportedOpError("sequence_lens shorter than the sequence, with ops after "
                                     "the recurrent node or recurrent nodes without "
                                     "sequence_lens: ONNX feeds them the zero padding")
    ys, states = [], []
    for b in range(nb):
        s = model.stream(math)
        s.set_state(initial_state(model, b, feeds))
        y = np.zeros((nt, model.output_size), np.float32)
        if lens[b] > 0:
            r = s.run(np.ascontiguousarray(xs[b, :lens[b]]))
            if r.shape[0] == lens[b]:
                y[:lens[b]] = r
            else:  # a model with return_sequences=False gives one row
                y[-1] = r[-1]
        ys.append(y)
        st = s.get_state()
        states.append(dict(zip(st.names, st.arrays, strict=True)))
    ys = np.stack(ys)
    slices = model.output_slices
    out = {}
    for name, rec in io["outputs"].items():
        if rec["kind"] == "state":
            out[name] = _state_output(rec, states)
            continue
        if rec["kind"] == "packed":
            out[name] = _packed_output(rec, states)
            continue
        y = ys[..., slices[rec["output"]]] if "output" in rec else ys
        if flat_shape is not None:
            out[name] = np.ascontiguousarray(y.reshape(flat_shape + (y.shape[-1],)))
        else:
            out[name] = _seq_output(rec, y)
    return out


def _arrange(base, have: str, labels) -> np.ndarray:
    """Transpose ``base`` (axes named by the letters of ``have``) into ``labels``
    order: a label ``"B*T"`` is those axes merged, labels ``base`` lacks become
    unit axes, and unit axes of ``base`` that ``labels`` lack are dropped."""
    flat = [part for lab in labels for part in lab.split("*")]
    for k in range(len(have) - 1, -1, -1):
        if have[k] not in flat:
            if base.shape[k] != 1:
                raise ModelFormatError(f"an output drops axis {have[k]!r} of size > 1")
            base = base.reshape(base.shape[:k] + base.shape[k + 1:])
            have = have[:k] + have[k + 1:]
    base = np.transpose(base, [have.index(p) for p in flat if p in have])
    sizes = iter(base.shape)
    shape = []
    for lab in labels:
        n = 1
        for part in lab.split("*"):
            n *= next(sizes) if part in have else 1
        shape.append(n)
    return np.ascontiguousarray(base.reshape(shape), np.float32)


def _seq_output(rec, ys) -> np.ndarray:
    labels = rec["axes"]
    d = rec["sizes"][labels.index("D")] if "D" in labels else 1
    nb, nt, fo = ys.shape
    n = rec["sizes"][labels.index("L")] if "L" in labels else 1   # steps of (C, L)
    base = ys.reshape(nb, nt, d, fo // d // n, n)
    if rec["last"] or "T" not in "*".join(labels).split("*"):
        base = base[:, -1:]
    return _arrange(base, "BTDFL", labels)


def _packed_output(rec, states) -> np.ndarray:
    """A state output in any layout: each state vector at its place, per batch row."""
    shape = [len(states) if s is None else s for s in rec["shape"]]
    out = np.zeros(shape, np.float32)
    for b, st in enumerate(states):
        for name, index in rec["places"]:
            idx = tuple(b if i == "B" else slice(None) if i == "F" else i for i in index)
            out[idx] = st[name].reshape(out[idx].shape)
    return out


def _state_output(rec, states) -> np.ndarray:
    base = np.stack([np.stack([st[p] for p in rec["parts"]]) for st in states], axis=1)
    return _arrange(base, "RBF", rec["axes"])
