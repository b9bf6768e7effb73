"""The model: a validated stack of layers, its streams, its file and its summary."""

from __future__ import annotations

from .activations import Activation
from .batch import StreamBatch
from .errors import ModelFormatError
from .layers import GRU, LSTM, RNN, Dense, Embedding
from .plan import build_plan
from .stream import Stream
from .wrappers import Bidirectional, Reverse

_KINDS = (Dense, RNN, LSTM, GRU, Embedding, Bidirectional, Reverse, Activation)
_WHOLE = (Bidirectional, Reverse)


class Model:
    """A stack of layers run in order, one timestep at a time.

    Parameters
    ----------
    layers : sequence of Dense, RNN, LSTM, GRU, Embedding, Bidirectional, Reverse, Activation
        Each layer's input size must equal the previous layer's output size.
        An :class:`Embedding` may only come first; the model then takes token ids.
    provenance : dict, optional
        Where the model came from (source framework, file hash, converter);
        stored in the ``.ernn`` manifest and shown by ``edgernn inspect``.
    return_sequences : bool, default True
        False for many-to-one models: ``Stream.run`` returns only the last
        output row (``step`` is unchanged: every step has an output).
    initial_state : StreamState, optional
        The state a new or reset stream starts from (zeros when omitted), e.g.
        an ONNX ``initial_h`` initializer. Must match the streams' state shapes.

    Attributes
    ----------
    input_size, output_size : int
    num_tokens : int        vocabulary size when the first layer is an Embedding, else 0
    streamable : bool       False when a Bidirectional or Reverse layer needs whole sequences
    """

    def __init__(self, layers, provenance: dict | None = None, return_sequences: bool = True,
                 initial_state=None):
        layers = tuple(layers)
        if not layers:
            raise ModelFormatError("Model needs at least one layer, got none")
        for i, layer in enumerate(layers):
            if isinstance(layer, str):
                layer = Activation(layer)
                layers = layers[:i] + (layer,) + layers[i + 1:]
            if not isinstance(layer, _KINDS):
                raise ModelFormatError(f"layer {i}: expected one of "
                                       f"{[k.__name__ for k in _KINDS]}, got "
                                       f"{type(layer).__name__}")
            if isinstance(layer, Embedding) and i > 0:
                raise ModelFormatError(f"layer {i}: an Embedding may only be the first layer")
        if isinstance(layers[0], Activation):
            raise ModelFormatError("layer 0: an Activation cannot come first (its size is "
                                   "unknown); put it after a sized layer")
        size = layers[0].input_size
        sizes = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, Activation):
                if layer.input_size != size and not (i == 0 and isinstance(layer, Embedding)):
                    raise ModelFormatError(
                        f"layer {i} ({type(layer).__name__}) expects input size "
                        f"{layer.input_size}, but the previous layer outputs {size}")
                size = layer.output_size
            sizes.append(size)
        self.layers = layers
        self.sizes = tuple(sizes)
        self.provenance = dict(provenance or {})
        self.return_sequences = bool(return_sequences)
        self._plans: dict[str, list] = {}
        self.initial_state = None
        if initial_state is not None:
            self._check_initial_state(initial_state)
            self.initial_state = initial_state.copy()

    def _check_initial_state(self, state) -> None:
        from .stream import StreamState

        want = tuple((n,) for name, off, n in self.state_layout())
        if not isinstance(state, StreamState) or state.shapes != want:
            got = state.shapes if isinstance(state, StreamState) else type(state).__name__
            raise ModelFormatError(f"initial_state: expected a StreamState with shapes {want}, "
                                   f"got {got}")

    def state_layout(self) -> list:
        """(name, offset, length) of every recurrent state vector, in StreamState order."""
        out = []
        for seg in self._segments():
            plans = seg[1:] if isinstance(seg, tuple) else (seg,)
            for plan in plans:
                if plan is not None:
                    out.extend(plan.state_spans)
        return out

    # --- shape --------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    @property
    def num_tokens(self) -> int:
        first = self.layers[0]
        return first.num_embeddings if isinstance(first, Embedding) else 0

    @property
    def streamable(self) -> bool:
        return not any(isinstance(layer, _WHOLE) for layer in self.layers)

    def __repr__(self) -> str:
        names = ", ".join(type(layer).__name__ for layer in self.layers)
        return f"Model([{names}], input_size={self.input_size}, output_size={self.output_size})"

    # --- engine -------------------------------------------------------------
    def _segments(self, math: str = "fast") -> list:
        """Packed plans: a Plan per run of step-able layers; per Bidirectional a tuple
        ``(layer, forward_plan, backward_plan)``, per Reverse ``(layer, None, plan)``."""
        segs = self._plans.get(math)
        if segs is None:
            segs, run, idx = [], [], []
            for i, layer in enumerate(self.layers):
                if isinstance(layer, Bidirectional):
                    if run:
                        segs.append(build_plan(run, math, [str(j) for j in idx]))
                        run, idx = [], []
                    segs.append((layer, build_plan([layer.forward], math, [f"{i}.forward"]),
                                 build_plan([layer.backward], math, [f"{i}.backward"])))
                elif isinstance(layer, Reverse):
                    if run:
                        segs.append(build_plan(run, math, [str(j) for j in idx]))
                        run, idx = [], []
                    segs.append((layer, None, build_plan([layer.layer], math, [f"{i}.reverse"])))
                else:
                    run.append(layer)
                    idx.append(i)
            if run:
                segs.append(build_plan(run, math, [str(j) for j in idx]))
            self._plans[math] = segs
        return segs

    def stream(self, math: str = "fast") -> Stream:
        """A new stream with zero state.

        Parameters
        ----------
        math : "fast" or "exact"
            Rational tanh/sigmoid (max abs error < 3e-7, vectorised) or libm's.
        """
        return Stream(self, math)

    def streams(self, n: int, math: str = "fast") -> StreamBatch:
        """``n`` independent streams with zero state, stepped together."""
        return StreamBatch(self, n, math)

    # --- file ---------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model to an ``.ernn`` file (see :mod:`edgernn.fileformat`)."""
        from .fileformat import save_model

        save_model(self, path)

    # --- summary ------------------------------------------------------------
    def summary_rows(self) -> list[dict]:
        """Per layer: type, shape, parameters, MACs per step, bytes, and the 4:3 check."""
        rows = []
        for i, layer in enumerate(self.layers):
            kind = type(layer).__name__
            if isinstance(layer, Activation):
                rows.append(dict(index=i, type=f"Activation({layer.name})",
                                 shape=f"{self.sizes[i]}", params=0, macs=0, bytes=0,
                                 expected_params=None))
                continue
            expected = None
            core = (layer.forward if isinstance(layer, Bidirectional)
                    else layer.layer if isinstance(layer, Reverse) else layer)
            if isinstance(core, (LSTM, GRU, RNN)):
                g = {LSTM: 4, GRU: 3, RNN: 1}[type(core)]
                h, n = core.hidden_size, core.input_size
                nb = sum(b is not None for b in (core.bias_ih, core.bias_hh))
                expected = g * (h * n + h * h + nb * h)
                if isinstance(core, LSTM) and core.peephole is not None:
                    expected += 3 * h
                if isinstance(layer, Bidirectional):
                    expected *= 2
                kind = kind if core is layer else f"{kind}({type(core).__name__})"
            shape = f"{layer.input_size}->{layer.output_size}"
            if isinstance(layer, Dense) and layer.activation.name != "linear":
                kind += f"({layer.activation.name})"
            rows.append(dict(index=i, type=kind, shape=shape, params=layer.param_count(),
                             macs=layer.macs(), bytes=layer.nbytes(), expected_params=expected))
        return rows

    def describe(self) -> str:
        """A table of layers: parameters, MACs per step, bytes, and for recurrent
        layers the parameter count the gate structure predicts (4 gates for LSTM,
        3 for GRU: the 4:3 ratio), marked ``ok`` when it matches."""
        rows = self.summary_rows()
        head = f"{'#':>2}  {'layer':<24} {'shape':>11} {'params':>10} {'MACs/step':>10} " \
               f"{'bytes':>10}  gate check"
        lines = [head, "-" * len(head)]
        for r in rows:
            chk = "" if r["expected_params"] is None else (
                f"{r['expected_params']} ok" if r["expected_params"] == r["params"]
                else f"expected {r['expected_params']} MISMATCH")
            lines.append(f"{r['index']:>2}  {r['type']:<24} {r['shape']:>11} {r['params']:>10} "
                         f"{r['macs']:>10} {r['bytes']:>10}  {chk}")
        tot_p = sum(r["params"] for r in rows)
        tot_m = sum(r["macs"] for r in rows)
        tot_b = sum(r["bytes"] for r in rows)
        lines.append("-" * len(head))
        lines.append(f"{'':>2}  {'total':<24} {self.input_size:>5}->{self.output_size:<5} "
                     f"{tot_p:>10} {tot_m:>10} {tot_b:>10}")
        kind = f"token ids < {self.num_tokens}" if self.num_tokens else "float32 vectors"
        lines.append(f"input: {kind}; step(): "
                     f"{'yes' if self.streamable else 'no (whole sequences: run() only)'}"
                     f"{'' if self.return_sequences else '; run() returns the last step only'}"
                     f"{'; non-zero initial state' if self.initial_state is not None else ''}")
        return "\n".join(lines)
