"""The conversion context: bound values, the layer chain and the I/O record."""

from __future__ import annotations

from onnx import helper

from edgernn.errors import ModelFormatError, UnsupportedOpError

from .values import Const, Seq, StateOut


def node_desc(node) -> str:
    return f"{node.op_type} node {node.name or '<unnamed>'!r}"


class Context:
    """State of one conversion: ``env`` maps value names to symbolic values.

    Attributes
    ----------
    layers : list of edgernn layers, in chain order
    io : dict
        JSON-able description of how graph inputs and outputs map onto the
        model (see :func:`converters.onnx.run_like_onnx`); stored in
        ``model.provenance["onnx_io"]``.
    supported : list of str
        Op types of the registry (for error messages).
    """

    def __init__(self, opset: int, supported):
        self.opset = opset
        self.env: dict[str, object] = {}
        self.layers: list = []
        self.binding: dict[str, str] = {}
        self.io: dict = {"state_inputs": [], "init_state": {}, "sequence_lens": None,
                         "outputs": {}, "data": None, "onestep": False}
        self.supported = sorted(supported)
        self.recurrent_layers: list[int] = []
        #: bumped on every change of the chain; a Seq may grow it only if its
        #: ``pos`` equals the current head
        self.head = 0

    # --- errors -----------------------------------------------------------
    def unsupported(self, node, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{node_desc(node)}: {what}; supported op types: "
                                  f"{', '.join(self.supported)}")

    def bad(self, node, what: str) -> ModelFormatError:
        return ModelFormatError(f"{node_desc(node)}: {what}")

    # --- attributes and constants -----------------------------------------
    @staticmethod
    def attrs(node) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def check_attrs(self, node, allowed) -> dict:
        at = self.attrs(node)
        extra = sorted(set(at) - set(allowed))
        if extra:
            raise self.unsupported(node, f"attribute {extra[0]!r} is not supported "
                                         f"(supported attributes: {sorted(allowed)})")
        return at

    def value(self, name: str):
        if name == "":
            return None
        if name not in self.env:
            raise ModelFormatError(f"value {name!r} is used before it is produced")
        return self.env[name]

    def const(self, node, i: int, what: str, optional: bool = False):
        """Input ``i`` of ``node`` as a numpy array (it must be constant)."""
        name = node.input[i] if i < len(node.input) else ""
        v = self.value(name)
        if v is None:
            if optional:
                return None
            raise self.bad(node, f"input {i} ({what}) is missing")
        if not isinstance(v, Const):
            raise self.unsupported(node, f"input {i} ({what}, {name!r}) must be an initializer "
                                         f"or constant, got a {type(v).__name__} value")
        return v.value

    # --- the chain --------------------------------------------------------
    def label(self, a: str) -> str:
        while a in self.binding:
            a = self.binding[a]
        return a

    def labels(self, seq: Seq) -> tuple:
        return tuple(self.label(a) for a in seq.axes)

    def bind(self, node, var: str, want: str) -> None:
        cur = self.label(var)
        if cur == want:
            return
        if cur.startswith("?"):
            self.binding[cur] = want
            return
        if cur == "U" and want == "B":
            return
        raise self.unsupported(node, f"an axis labelled {cur!r} is used as {want!r} "
                                     f"(time and batch axes got mixed up)")

    def as_seq(self, node, v, what: str = "input") -> Seq:
        """``v`` as chain data, converting a last-layer ``Y_h`` (many-to-one)."""
        if isinstance(v, StateOut):
            v = self._state_as_seq(node, v)
        if not isinstance(v, Seq):
            raise self.unsupported(node, f"{what} must be the model's data flow, got a "
                                         f"{type(v).__name__} value")
        if v.pos != self.head:
            raise self.unsupported(node, "the graph branches: it uses the output of an "
                                         "earlier layer again after later layers (only a "
                                         "chain of layers is supported)")
        return v

    def _state_as_seq(self, node, v: StateOut) -> Seq:
        last = len(self.layers) - 1
        if (len(v.parts) == 1 and "R" not in v.axes and v.parts[0] == f"{last}.h"):
            axes = tuple("B" if a == "B" else ("F" if a == "F" else "U") for a in v.axes)
            sizes = tuple(v.hidden if a == "F" else (None if a == "B" else 1) for a in axes)
            return Seq(axes, sizes, self.head, last=True)
        raise self.unsupported(node, f"uses recurrent state {list(v.parts)} as data; only "
                                     f"the h state of the last (forward) recurrent layer, "
                                     f"one row of Y_h, can stand for its last output")

    def append(self, layer) -> int:
        self.layers.append(layer)
        self.head += 1
        return len(self.layers) - 1

    def replace(self, index: int, layer) -> None:
        """Swap a built layer (folding a bias or activation into it)."""
        self.layers[index] = layer
        self.head += 1


__all__ = ["Context", "node_desc"]
