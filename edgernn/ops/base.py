"""What every op description shares: array checks, strict configs, the functional call.

An op is a frozen dataclass: its configuration and its weights, nothing else
(its per-stream state lives in the stream's arena). Each op class is also its
own registry entry: it says how big its output is, which state vectors it
keeps, how much scratch it needs and how it is packed into the engine's arenas
(:meth:`Op.pack`). :mod:`edgernn.ops` lists every op class in one table.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np

from ..errors import ModelFormatError
from ..kernels.layout import pad8 as _pad8

__all__ = ["Op", "f32_array", "opt_f32_array", "positive", "Schema"]


def f32_array(name: str, a, shape: tuple[int, ...] | None = None, *, owner: str) -> np.ndarray:
    """A read-only C-contiguous float32 copy of ``a``, checked against ``shape``."""
    try:
        arr = np.array(a, dtype=np.float32, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{owner}.{name}: expected a float array, "
                               f"got {type(a).__name__}") from exc
    if shape is not None and arr.shape != shape:
        raise ModelFormatError(f"{owner}.{name}: expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{owner}.{name}: contains non-finite values")
    arr.flags.writeable = False
    return arr


def opt_f32_array(name, a, shape, *, owner):
    return None if a is None else f32_array(name, a, shape, owner=owner)


def set_count(op, name: str, least: int = 1) -> None:
    """Field ``name`` of the frozen ``op`` checked to be an integer >= ``least`` (a numpy
    integer too) and stored as a Python int."""
    v = getattr(op, name)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
        want = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ModelFormatError(f"{type(op).__name__}.{name}: expected {want}, got {v!r}")
    object.__setattr__(op, name, int(v))


def positive(name, v, *, owner):
    """``None`` or a positive finite float (clip thresholds)."""
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{owner}.{name}: expected a number, got {v!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise ModelFormatError(f"{owner}.{name}: expected a positive finite threshold, "
                               f"got {v!r}")
    return v


class Schema:
    """Strict types of a config field as stored in a manifest (no coercion)."""

    BOOL, INT, FLOAT, OPT_FLOAT, STR, ACT, ACTS, INTS, OPT_FLOATS, QUANT = (
        "bool", "int", "float", "float|null", "str", "activation", "activations", "int[]",
        "float|float[]|null", "quant|null")
    INT_SIGNED = "int (signed)"   # an axis, an offset that may be negative

    @staticmethod
    def check(owner: str, key: str, kind: str, v) -> None:
        def bad(want):
            return ModelFormatError(f"{owner}.{key}: expected {want}, got {v!r}"[:300])

        def number(x):
            return (isinstance(x, (int, float)) and not isinstance(x, bool)
                    and math.isfinite(x) and abs(x) < 1e30)

        if kind == Schema.BOOL and not isinstance(v, bool):
            raise bad("true or false")
        if kind == Schema.INT_SIGNED and (not isinstance(v, int) or isinstance(v, bool)
                                          or not -2**31 < v < 2**31):
            raise bad("an integer in (-2**31, 2**31)")
        if kind == Schema.INT and (not isinstance(v, int) or isinstance(v, bool)
                                   or not 0 <= v < 2**31):
            raise bad("an integer in [0, 2**31)")
        if kind == Schema.FLOAT and not number(v):
            raise bad("a finite number")
        if kind == Schema.OPT_FLOAT and v is not None and not number(v):
            raise bad("a finite number or null")
        if kind == Schema.STR and not isinstance(v, str):
            raise bad("a string")
        if kind == Schema.INTS and (not isinstance(v, list) or len(v) > 4096 or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**31 for i in v)):
            raise bad("a list of integers")
        if kind == Schema.OPT_FLOATS and v is not None and not number(v) and not (
                isinstance(v, list) and len(v) <= 1 << 20 and all(number(i) for i in v)):
            raise bad("a number, a list of numbers or null")
        if kind == Schema.QUANT and v is not None and not isinstance(v, dict):
            raise bad("an object or null")
        if kind == Schema.ACT:
            Schema.check_activation(owner, key, v)
        if kind == Schema.ACTS:
            if not isinstance(v, list) or len(v) > 8:
                raise bad("a list of activations")
            for i, a in enumerate(v):
                Schema.check_activation(owner, f"{key}[{i}]", a)

    @staticmethod
    def check_activation(owner, key, v) -> None:
        if not isinstance(v, dict) or set(v) != {"name", "alpha", "beta"}:
            raise ModelFormatError(f"{owner}.{key}: expected an object with name, alpha and "
                                   f"beta, got {v!r}"[:300])
        Schema.check(owner, f"{key}.name", Schema.STR, v["name"])
        Schema.check(owner, f"{key}.alpha", Schema.FLOAT, v["alpha"])
        Schema.check(owner, f"{key}.beta", Schema.FLOAT, v["beta"])


class Op:
    """Base of every op description (see module docstring).

    Class attributes a subclass sets:

    ``_arrays``   names of its array fields, in order
    ``schema``    config field -> :class:`Schema` kind, checked strictly on load
    ``streamable`` False for ops that need the whole sequence (Bidirectional)
    ``kernel``    its kernel, "module:function" in :mod:`edgernn.kernels`
    """

    _arrays: tuple[str, ...] = ()
    schema: dict[str, str] = {}
    #: "module:function" of its kernel in edgernn.kernels (None: the planner handles it);
    #: a property where an instance chooses among several
    kernel: str | None = None
    #: every kernel an op of this kind may run (default: ``(kernel,)``), for warm-up
    kernels: tuple[str, ...] = ()
    streamable = True
    #: number of input tensors (None: any number >= 1)
    arity: int | None = 1
    #: the planner places the inputs inside the output buffer, in order (Concat)
    places_inputs = False
    #: the output is a view of the input from this offset, with no kernel (Slice)
    view_start: int | None = None
    #: number of token ids the op takes as input (0: a float vector; Embedding)
    tokens = 0
    #: the output is carried to the next step and set by the model's update (State)
    carried = False
    #: weight fields that int8 quantisation may replace (the quantiser asks the op)
    quantizable: tuple[str, ...] = ()

    def matrix_cols(self, name: str) -> int:
        """Columns of the matrix product of weight field ``name`` (its last axis; an op
        whose weight is reshaped into the product's matrix says otherwise)."""
        return getattr(self, name).shape[-1]

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if not cls.__dict__.get("kernels") and isinstance(cls.__dict__.get("kernel"), str):
            cls.kernels = (cls.kernel,)

    # --- functional API -----------------------------------------------------
    def __call__(self, *inputs, name: str | None = None):
        """Apply this op to tensors: ``y = edgernn.GRU(...)(x)`` adds a graph node."""
        from ..ir.graph import node

        return node(self, inputs, name)

    # --- shapes and state (registry hooks) ----------------------------------
    def output_size_for(self, sizes: tuple[int, ...]) -> int:
        """The output size given the input sizes; raises ModelFormatError on a mismatch."""
        (n,) = sizes
        if n != self.input_size:
            raise ModelFormatError(f"{type(self).__name__} expects input size "
                                   f"{self.input_size}, got {n}")
        return self.output_size

    def state_vectors(self) -> tuple[tuple[str, int], ...]:
        """(suffix, length) of each recurrent state vector, e.g. ``(("h", 96),)``."""
        return ()

    def kernel_for(self, exact: bool) -> str | None:
        """The kernel to run with ``math="exact"`` (libm activations) or not: ``kernel``,
        unless a fused fast kernel has a general twin that honours the exact codes."""
        return self.kernel

    def scratch_floats(self) -> int:
        """Floats of per-step scratch the op's kernel needs (shared by all ops)."""
        return 0

    def inner(self) -> tuple:
        """``(part, op)`` of the ops this one runs (a Bidirectional's two layers)."""
        return ()

    def label(self) -> str:
        """The op as ``describe()`` names it: its kind, with what sets it apart (a Dense's
        activation, a Bidirectional's layer kind)."""
        inner = self.inner()
        return f"{type(self).__name__}({type(inner[0][1]).__name__})" if inner else \
            type(self).__name__

    # --- serialisation --------------------------------------------------------
    def params(self) -> dict[str, np.ndarray]:
        """The op's weights and biases by field name (``None`` fields left out)."""
        return {k: getattr(self, k) for k in self._arrays if getattr(self, k) is not None}

    def arrays(self) -> dict[str, np.ndarray]:
        """:meth:`params`, and an int8 op's per-row scales as ``quant.<weight name>``."""
        out = self.params()
        quant = getattr(self, "quant", None)
        if quant is not None:
            out.update({f"quant.{k}": v for k, v in quant.scales.items()})
        return out

    def config(self) -> dict:
        """JSON-able non-array fields."""
        out = {}
        for f in fields(self):
            if f.name in self._arrays:
                continue
            v = getattr(self, f.name)
            if hasattr(v, "to_config"):
                v = v.to_config()
            elif isinstance(v, tuple) and v and hasattr(v[0], "to_config"):
                v = [a.to_config() for a in v]
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, np.ndarray):
                v = v.tolist()
            out[f.name] = v
        return out

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Strict check of a manifest config: known keys, exact JSON types, no coercion."""
        name = cls.__name__
        if not isinstance(config, dict):
            raise ModelFormatError(f"{name}.config: expected an object, got "
                                   f"{type(config).__name__}")
        unknown = sorted(set(config) - set(cls.schema))
        if unknown:
            raise ModelFormatError(f"{name}.config: unknown keys {unknown[:5]}; expected "
                                   f"some of {sorted(cls.schema)}")
        for key, v in config.items():
            Schema.check(name, key, cls.schema[key], v)

    @classmethod
    def from_parts(cls, config: dict, arrays: dict[str, np.ndarray]):
        """Rebuild from a manifest entry (config checked strictly first)."""
        cls.check_config(config)
        scales = {k[6:]: v for k, v in arrays.items() if k.startswith("quant.")}
        arrays = {k: v for k, v in arrays.items() if not k.startswith("quant.")}
        unknown = sorted(set(arrays) - set(cls._arrays))
        if unknown or (scales and config.get("quant") is None):
            raise ModelFormatError(f"{cls.__name__}: unknown arrays "
                                   f"{unknown or sorted(scales)}")
        kw = dict(config)
        kw.update(arrays)
        if config.get("quant") is not None:
            from ..ir.quant import QuantParams

            kw["quant"] = QuantParams.from_config(cls.__name__, config["quant"], scales)
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ModelFormatError(f"{cls.__name__}: {exc}") from exc

    # --- summary ----------------------------------------------------------------
    def param_count(self) -> int:
        """Weights and biases, nested ops' included (an int8 op's scales are not counted)."""
        return int(sum(a.size for a in self.params().values())
                   + sum(op.param_count() for _, op in self.inner()))

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays().values()))

    def macs(self) -> int:
        return 0

    def expected_params(self) -> int | None:
        """The parameter count the op's structure predicts (None: no check)."""
        return None


def weight_field(op, name: str, shape=None) -> np.ndarray:
    """Op field ``name`` as float32, or as int8 when the op is quantised (``op.quant``)."""
    owner = type(op).__name__
    quant = getattr(op, "quant", None)
    if quant is not None and name in quant.scales:
        a = quant.check_weight(owner, name, getattr(op, name))
        if shape is not None and a.shape != shape:
            raise ModelFormatError(f"{owner}.{name}: expected shape {shape}, got {a.shape}")
        return a
    return f32_array(name, getattr(op, name), shape, owner=owner)


def check_quant(op) -> None:
    """``op.quant`` is None or a QuantParams naming only weights of this op."""
    from ..ir.quant import QuantParams

    quant = getattr(op, "quant", None)
    if quant is None:
        return
    owner = type(op).__name__
    if not isinstance(quant, QuantParams):
        raise ModelFormatError(f"{owner}.quant: expected edgernn.QuantParams or None, got "
                               f"{type(quant).__name__}")
    if set(quant.scales) != set(op.quantizable):
        raise ModelFormatError(f"{owner}.quant.scales: expected scales for exactly "
                               f"{list(op.quantizable)}, got {sorted(quant.scales)}")
    if quant.output_scale is not None and owner != "Dense":
        raise ModelFormatError(f"{owner}.quant.output_scale: only a Dense re-quantises its "
                               f"output, got {quant.output_scale!r}")
    from ..kernels.spec.qlinalg import MAX_COLS

    for name in op.quantizable:
        cols = op.matrix_cols(name)
        if cols > MAX_COLS:
            raise ModelFormatError(f"{owner}.{name}: an int8 matrix has at most {MAX_COLS} "
                                   f"columns (int32 sums), got {cols}; keep this op in float")


def quant_scratch(op, cols: int, rows: int) -> int:
    """Extra scratch floats of an int8 op (0 for a float op)."""
    from ..kernels.spec.qlinalg import qscratch_floats

    return 0 if getattr(op, "quant", None) is None else qscratch_floats(cols, rows)


def pad8(n: int) -> int:
    """``n`` rounded up to a multiple of 8 (:func:`edgernn.kernels.layout.pad8`)."""
    return _pad8(int(n))
