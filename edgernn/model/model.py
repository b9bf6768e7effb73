"""The model: a validated graph of ops, its streams, its file and its summary."""

from __future__ import annotations

from ..engine.batch import StreamBatch
from ..engine.plan import build_plan
from ..engine.stream import Stream
from ..errors import ModelFormatError
from ..format.modelfile import save_model
from ..ir.graph import Graph, Input, Tensor
from ..ir.state import StreamState
from ..ops.activation import Activation
from ..ops.base import Op
from . import summary


class Model:
    """A graph of ops run one timestep at a time: a stack of layers, or a graph.

    ``Model(layers)`` runs the layers in order; ``Model(inputs=x, outputs=[a, b])``
    takes a graph built with the functional API (:mod:`edgernn.ir.graph`).

    Parameters
    ----------
    layers : sequence of ops (Dense, RNN, LSTM, GRU, Embedding, Bidirectional,
        Reverse, Activation or a name of one)
        Each layer's input size must equal the previous layer's output size.
        An :class:`Embedding` may only come first; the model then takes token ids.
    inputs, outputs : Tensor or sequence of Tensors (instead of ``layers``)
        Several inputs arrive concatenated in one input vector, several outputs
        leave concatenated in one output vector (see :attr:`output_slices`).
    updates : dict of Tensor -> Tensor, optional
        For each state tensor (:func:`edgernn.state`), the tensor whose value it
        takes at the next step.
    audio : dict, optional
        How the model meets sound (:data:`AUDIO`; ``edgernn.audio.Pipeline`` runs it):
        ``{"kind": "denoise", "sample_rate": 16000, "hop": 128, "input": "samples",
        "output": "samples", "latency": 384}``.
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
    graph : Graph                 inputs, nodes in run order, outputs
    layers : tuple of ops         the nodes' ops, in run order
    inputs, outputs : tuple of (name, size)
    input_size, output_size : int (totals over the inputs / outputs)
    num_tokens : int        vocabulary size when the input feeds an Embedding, else 0
    streamable : bool       False when a Bidirectional or Reverse op needs whole sequences
    quantization : dict or None   the quantisation report of an int8 model

    A model read by :func:`edgernn.load` also has ``manifest`` (dict),
    ``manifest_sha256`` (hex), ``manifest_hash_stored`` (bool), ``signature`` (the
    ``manifest.sig`` document or None) and ``signed_by`` (hex key fingerprint or None).
    """

    manifest: dict | None = None
    manifest_sha256: str | None = None
    manifest_hash_stored: bool = False
    signature: dict | None = None
    signed_by: str | None = None

    def __init__(self, layers=None, provenance: dict | None = None,
                 return_sequences: bool = True, initial_state=None, *, inputs=None,
                 outputs=None, updates=None, quantization: dict | None = None,
                 audio: dict | None = None):
        if layers is not None:
            if inputs is not None or outputs is not None:
                raise ModelFormatError("give either layers or inputs/outputs, not both")
            inputs, outputs = _stack(layers)
        elif inputs is None or outputs is None:
            raise ModelFormatError("Model needs layers, or inputs and outputs")
        self.graph = Graph.build(_as_tuple(inputs), _as_tuple(outputs), updates or ())
        g = self.graph
        for t in g.nodes:
            if t.op.tokens and t.inputs[0].op is not None:
                raise ModelFormatError(f"node {t.name!r}: an Embedding must take a model input "
                                       f"(token ids) directly")
        tok = [t for t in g.nodes if t.op.tokens]
        if tok and (len(g.inputs) != 1 or any(
                not c.op.tokens for c in g.nodes if g.inputs[0] in c.inputs)):
            raise ModelFormatError("a model whose input feeds an Embedding must have that one "
                                   "input, used only by Embeddings (token ids)")
        self.layers = tuple(t.op for t in g.nodes)
        self.inputs = tuple((t.name, t.size) for t in g.inputs)
        self.outputs = tuple((t.name, t.size) for t in g.outputs)
        self.num_tokens = tok[0].op.tokens if tok else 0
        self.provenance = dict(provenance or {})
        self.return_sequences = bool(return_sequences)
        self.quantization = quantization
        self.audio = check_audio(audio, self)
        self._plans: dict[str, list] = {}
        self.initial_state = None
        if initial_state is not None:
            self._check_initial_state(initial_state)
            self.initial_state = initial_state.copy()

    def inline(self, inputs, prefix: str = "") -> tuple:
        """This model's graph applied to other tensors, to build a bigger model.

        Returns ``(outputs, updates)``: the tensors of this model's outputs, and its
        state updates (new state tensor -> new value) for the bigger model's
        ``updates``. Node names get ``prefix``; each call makes new nodes (and new
        recurrent state).
        """
        inputs = tuple(inputs)
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ModelFormatError(f"inline: the model takes {len(g.inputs)} inputs, got "
                                   f"{len(inputs)}")
        new = {}
        for mine, t in zip(g.inputs, inputs, strict=True):
            if not isinstance(t, Tensor) or t.size != mine.size:
                raise ModelFormatError(f"inline: input {mine.name!r} has size {mine.size}, got "
                                       f"{getattr(t, 'size', type(t).__name__)}")
            new[id(mine)] = t
        for t in g.nodes:
            new[id(t)] = t.op(*[new[id(s)] for s in t.inputs], name=f"{prefix}{t.name}")
        return (tuple(new[id(t)] for t in g.outputs),
                {new[id(s)]: new[id(v)] for s, v in g.updates})

    def _check_initial_state(self, state) -> None:
        want = tuple((n,) for name, off, n in self.state_layout())
        if not isinstance(state, StreamState) or state.shapes != want:
            got = state.shapes if isinstance(state, StreamState) else type(state).__name__
            raise ModelFormatError(f"initial_state: expected a StreamState with shapes {want}, "
                                   f"got {got}")

    def state_layout(self) -> list:
        """(name, offset, length) of every recurrent state vector, in StreamState order."""
        out = []
        for seg in self._segments():
            for plan in seg.plans:
                out.extend(plan.state_spans)
        return out

    # --- shape --------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return sum(n for _, n in self.inputs)

    @property
    def output_size(self) -> int:
        return sum(n for _, n in self.outputs)

    @property
    def output_slices(self) -> dict:
        """Output name -> slice of the concatenated output vector."""
        out, start = {}, 0
        for name, n in self.outputs:
            out[name] = slice(start, start + n)
            start += n
        return out

    def split(self, y) -> dict:
        """The named outputs of ``y`` (an output vector, or rows of them) as views."""
        return {name: y[..., s] for name, s in self.output_slices.items()}

    @property
    def streamable(self) -> bool:
        return all(op.streamable for op in self.layers)

    def __repr__(self) -> str:
        names = ", ".join(type(layer).__name__ for layer in self.layers)
        return f"Model([{names}], input_size={self.input_size}, output_size={self.output_size})"

    # --- engine -------------------------------------------------------------
    def _segments(self, math: str = "fast") -> list:
        """The model as runnable parts, in order (see :class:`Segment`)."""
        segs = self._plans.get(math)
        if segs is None:
            segs = _segment(self.graph, math)
            self._plans[math] = segs
        return segs

    def stream(self, math: str = "fast") -> Stream:
        """A new stream at the initial state.

        Parameters
        ----------
        math : "fast" or "exact"
            Rational tanh/sigmoid (max abs error < 3e-7, vectorised) or libm's.
        """
        return Stream(self, math)

    def streams(self, n: int, math: str = "fast") -> StreamBatch:
        """``n`` independent streams at the initial state, stepped together."""
        return StreamBatch(self, n, math)

    # --- file ---------------------------------------------------------------
    def save(self, path, signing_key=None) -> None:
        """Write the model to an ``.ernn`` file atomically (as :func:`edgernn.save`).

        ``signing_key``: an Ed25519 private key (PEM bytes, raw 32 bytes, a path or a
        ``cryptography`` key; the ``sign`` extra) to sign the manifest with.
        """
        save_model(self, path, signing_key=signing_key)

    # --- summary ------------------------------------------------------------
    def summary_rows(self) -> list[dict]:
        """Per node: name, type, shape, parameters, MACs per step, bytes, gate check."""
        return summary.summary_rows(self)

    def describe(self) -> str:
        """A table of nodes: parameters, MACs per step, bytes, and for recurrent ops the
        parameter count the gate structure predicts (4 gates for LSTM, 3 for GRU: the
        4:3 ratio), marked ``ok`` when it matches."""
        return summary.describe(self)


#: the ``audio`` section of a model: key -> (type, allowed values or None)
AUDIO = {"kind": (str, ("denoise", "vad")), "sample_rate": (int, None), "hop": (int, None),
         "input": (str, ("samples",)), "output": (str, ("samples", "probability")),
         "latency": (int, None), "preset": (str, None),
         # the first hops only fill the input buffer: after them every state but these
         # is zeroed and their output is silence (NSNet2's enhancer drops its first frame)
         "warmup_hops": (int, None), "warmup_keep": (list, None)}


def check_audio(audio, model):
    """``audio`` checked against :data:`AUDIO` and the model's sizes (None passes)."""
    if audio is None:
        return None
    if not isinstance(audio, dict) or set(audio) - set(AUDIO) or \
            {"kind", "sample_rate", "hop", "input", "output"} - set(audio):
        raise ModelFormatError(f"audio: expected an object with kind, sample_rate, hop, "
                               f"input, output (and latency, preset), got {audio!r:.200}")
    for k, v in audio.items():
        typ, allowed = AUDIO[k]
        if not isinstance(v, typ) or isinstance(v, bool) or (allowed and v not in allowed) \
                or (typ is int and not 0 <= v < 2**31):
            raise ModelFormatError(f"audio.{k}: expected {allowed or typ.__name__}, got {v!r}")
    if not all(isinstance(n, str) for n in audio.get("warmup_keep", [])):
        raise ModelFormatError(f"audio.warmup_keep: expected state names, got "
                               f"{audio['warmup_keep']!r:.100}")
    if audio["hop"] < 1 or audio["sample_rate"] < 1000:
        raise ModelFormatError(f"audio: hop {audio['hop']} and sample_rate "
                               f"{audio['sample_rate']} out of range")
    if model.input_size != audio["hop"]:
        raise ModelFormatError(f"audio: a model taking samples takes one hop "
                               f"({audio['hop']}) per step, this one takes {model.input_size}")
    want = audio["hop"] if audio["output"] == "samples" else 1
    if model.output_size != want:
        raise ModelFormatError(f"audio: output {audio['output']!r} means {want} values per "
                               f"step, the model gives {model.output_size}")
    return dict(audio)


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def _stack(layers):
    layers = tuple(Activation(la) if isinstance(la, str) else la for la in layers)
    if not layers:
        raise ModelFormatError("Model needs at least one layer, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Op):
            raise ModelFormatError(f"layer {i}: expected an edgernn op, got "
                                   f"{type(layer).__name__}")
        if layer.tokens and i > 0:
            raise ModelFormatError(f"layer {i}: an Embedding may only be the first layer")
    first = layers[0]
    if not hasattr(first, "input_size"):
        raise ModelFormatError(f"layer 0: a {type(first).__name__} cannot come first (its "
                               f"input size is unknown); put it after a sized layer")
    x = Input(first.input_size)
    t = x
    for i, layer in enumerate(layers):
        try:
            t = layer(t, name=str(i))
        except ModelFormatError as exc:
            raise ModelFormatError(f"layer {i} ({type(layer).__name__}): "
                                   f"{str(exc).split(': ', 1)[-1]}") from None
    return x, t


class Segment:
    """A runnable part of a model.

    ``kind`` "plan": step-able nodes packed in ``plans[0]``; ``kind`` "whole": one
    whole-sequence node (Bidirectional: plans for forward and backward; Reverse:
    one plan). ``inputs`` and ``outputs`` are the tensors it reads and produces.
    """

    def __init__(self, kind, plans, inputs, outputs, node=None):
        self.kind, self.plans, self.inputs, self.outputs, self.node = (
            kind, tuple(plans), tuple(inputs), tuple(outputs), node)


def _segment(graph: Graph, math: str) -> list:
    nodes = graph.nodes
    if graph.updates and not all(t.op.streamable for t in nodes):
        raise ModelFormatError("a model with state tensors (edgernn.state) cannot hold "
                               "whole-sequence ops (Bidirectional, Reverse)")
    later: dict[int, int] = {}  # id(tensor) -> last node index that reads it
    for i, t in enumerate(nodes):
        for src in t.inputs:
            later[id(src)] = i
    for t in graph.outputs:
        later[id(t)] = len(nodes)
    segs, group = [], []

    def flush(end):
        if not group:
            return
        inside = {id(t) for t in group}
        ins, seen = [], set()
        for t in group:
            for src in t.inputs:
                if id(src) not in inside and id(src) not in seen:
                    seen.add(id(src))
                    ins.append(src)
        outs = [t for t in group if later.get(id(t), -1) >= end]
        updates = ()
        if len(segs) == 0 and end == len(nodes):  # the whole model: keep its I/O order
            ins, outs, updates = list(graph.inputs), list(graph.outputs), graph.updates
        segs.append(Segment("plan", [build_plan(group, ins, outs, math, updates)], ins, outs))
        group.clear()

    for i, t in enumerate(nodes):
        if t.op.streamable:
            group.append(t)
            continue
        flush(i)
        plans = []
        for part, inner in t.op.inner():
            x = Input(inner.input_size)
            y = inner(x, name=f"{t.name}.{part}")
            plans.append(build_plan([y], [x], [y], math))
        segs.append(Segment("whole", plans, t.inputs, (t,), node=t))
    flush(len(nodes))
    if not segs:  # outputs are inputs: an identity model
        segs.append(Segment("plan", [build_plan([], graph.inputs, graph.outputs, math)],
                            graph.inputs, graph.outputs))
    return segs


__all__ = ["Model", "Segment", "Tensor"]
