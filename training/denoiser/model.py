"""The RNNoise-like gain model in PyTorch, and its conversion to edgernn.

    x (2B+1) -> Dense 48 tanh -> d
    GRU 48 (vad_gru)   on d                       -> v ;  vad   = Dense 1 sigmoid (v)
    GRU 64 (noise_gru) on concat[d, v, x]         -> u
    GRU 96 (gain_gru)  on concat[v, u, x]         -> w ;  gains = Dense B sigmoid (w)

The bundled model has a gain GRU of 152 (`train.py --widths 48,48,64,152`, `widened`);
`narrowed` prunes the noise GRU (tried in issue 20's fifth round, not shipped).

The feature normalisation (fixed mean/std from the training corpus) is folded
into every layer that reads the features on export (`folded`), so the runtime
feeds raw front-end features and the graph needs no elementwise ops.
"""

from __future__ import annotations

import torch
from torch import nn


class GainNet(nn.Module):
    def __init__(self, num_features: int, num_bands: int, dense=48, vad=48, noise=64, gain=96):
        super().__init__()
        self.widths = {"dense": dense, "vad": vad, "noise": noise, "gain": gain}
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.dense = nn.Linear(num_features, dense)
        self.vad_gru = nn.GRU(dense, vad, batch_first=True)
        self.vad_out = nn.Linear(vad, 1)
        self.noise_gru = nn.GRU(dense + vad + num_features, noise, batch_first=True)
        self.gain_gru = nn.GRU(vad + noise + num_features, gain, batch_first=True)
        self.gain_out = nn.Linear(gain, num_bands)

    def forward(self, x, state=None):
        """x: float32[batch, T, F] -> (gains [batch, T, B], vad [batch, T, 1], state)."""
        h1, h2, h3 = state if state is not None else (None, None, None)
        xn = x if getattr(self, "norm_folded", False) else (x - self.mean) / self.std
        d = torch.tanh(self.dense(xn))
        v, h1 = self.vad_gru(d, h1)
        u, h2 = self.noise_gru(torch.cat([d, v, xn], -1), h2)
        w, h3 = self.gain_gru(torch.cat([v, u, xn], -1), h3)
        return torch.sigmoid(self.gain_out(w)), torch.sigmoid(self.vad_out(v)), (h1, h2, h3)


class SeqNet(nn.Module):
    """A plain stack for engines without graph ops: Dense 64 tanh, GRU 96, GRU 96, Dense B.

    No VAD head; the same training targets. The fallback bundled model until the
    graph engine (``edgernn.concat``) is available.
    """

    def __init__(self, num_features: int, num_bands: int, dense=64, hidden=96):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.dense = nn.Linear(num_features, dense)
        self.gru1 = nn.GRU(dense, hidden, batch_first=True)
        self.gru2 = nn.GRU(hidden, hidden, batch_first=True)
        self.gain_out = nn.Linear(hidden, num_bands)

    def forward(self, x, state=None):
        h1, h2 = state if state is not None else (None, None)
        xn = x if getattr(self, "norm_folded", False) else (x - self.mean) / self.std
        d = torch.tanh(self.dense(xn))
        a, h1 = self.gru1(d, h1)
        b, h2 = self.gru2(a, h2)
        return torch.sigmoid(self.gain_out(b)), None, (h1, h2)


def widened(net: GainNet, seed: int = 0, scale: float = 0.05, **widths) -> GainNet:
    """A wider GainNet computing exactly what ``net`` computes (function-preserving).

    ``widths``: new sizes of ``noise`` and/or ``gain`` (each >= the old one).
    The old weights are copied in; a new unit's incoming weights are small
    random values (``scale``), so it has a non-zero output and gradients, and
    every weight reading a new unit is zero, so the outputs do not change
    until training moves them.
    """
    old = net.widths
    new = {**old, **widths}
    if any(new[k] < old[k] for k in old) or new["dense"] != old["dense"] \
            or new["vad"] != old["vad"]:
        raise ValueError(f"widened: only noise/gain may grow, got {old} -> {new}")
    nf, nb = net.mean.numel(), net.gain_out.out_features
    out = GainNet(nf, nb, **new)
    gen = torch.Generator().manual_seed(seed)
    d, v = old["dense"], old["vad"]

    def grow(dst, src, rows, cols):
        """Copy src into dst; rows/cols: (old index -> new index) maps per axis."""
        dst.copy_(torch.randn(dst.shape, generator=gen) * scale)
        if src.dim() == 1:
            dst[rows] = src
        else:
            dst[rows[:, None], cols[None, :]] = src

    def gru_rows(h_old, h_new):        # r, z, n gate blocks of h_old rows inside h_new rows
        return torch.cat([torch.arange(h_old) + g * h_new for g in range(3)])

    no, nn_, go, gn = old["noise"], new["noise"], old["gain"], new["gain"]
    noise_in = torch.arange(d + v + nf)
    gain_in_old = torch.cat([torch.arange(v), v + torch.arange(no), v + nn_ + torch.arange(nf)])
    with torch.no_grad():
        out.load_state_dict({k: t for k, t in net.state_dict().items()
                             if not k.startswith(("noise_gru", "gain_gru", "gain_out"))},
                            strict=False)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            for layer, h_old, h_new, cols in (
                    ("noise_gru", no, nn_, noise_in if "ih" in name else torch.arange(no)),
                    ("gain_gru", go, gn, gain_in_old if "ih" in name else torch.arange(go))):
                dst = getattr(getattr(out, layer), name)
                grow(dst, getattr(getattr(net, layer), name), gru_rows(h_old, h_new), cols)
        # every weight reading a new unit is zero
        out.gain_gru.weight_ih_l0[:, v + no:v + nn_] = 0
        out.noise_gru.weight_hh_l0[:, no:] = 0
        out.gain_gru.weight_hh_l0[:, go:] = 0
        out.gain_out.weight.zero_()
        out.gain_out.weight[:, :go] = net.gain_out.weight
        out.gain_out.bias.copy_(net.gain_out.bias)
    return out


def narrowed(net: GainNet, x: torch.Tensor, noise: int) -> GainNet:
    """A GainNet whose noise GRU keeps only its ``noise`` most used units (pruning).

    A unit's use: the spread (std) of its output over the features ``x``
    [N, T, F] times the norm of the gain GRU's weights reading it. The mean
    output of each dropped unit over ``x`` is folded into the gain GRU's input
    bias, so what is lost is only that unit's variation; training recovers
    the rest (unlike `widened`, the function changes).
    """
    old = net.widths
    if not 0 < noise < old["noise"]:
        raise ValueError(f"narrowed: noise must shrink, got {old['noise']} -> {noise}")
    v, no = old["vad"], old["noise"]
    with torch.no_grad():
        xn = (x - net.mean) / net.std
        d = torch.tanh(net.dense(xn))
        vo, _ = net.vad_gru(d)
        u, _ = net.noise_gru(torch.cat([d, vo, xn], -1))
        u = u.reshape(-1, no)
        w = net.gain_gru.weight_ih_l0[:, v:v + no]
        use = u.std(0) * w.norm(dim=0)
        keep = torch.sort(torch.argsort(use, descending=True)[:noise]).values
        drop = torch.tensor([j for j in range(no) if j not in set(keep.tolist())])
        out = GainNet(net.mean.numel(), net.gain_out.out_features, **{**old, "noise": noise})
        out.load_state_dict({k: t for k, t in net.state_dict().items()
                             if not k.startswith(("noise_gru", "gain_gru"))}, strict=False)
        rows = torch.cat([keep + g * no for g in range(3)])
        ng, og = out.noise_gru, net.noise_gru
        ng.weight_ih_l0.copy_(og.weight_ih_l0[rows])
        ng.weight_hh_l0.copy_(og.weight_hh_l0[rows][:, keep])
        ng.bias_ih_l0.copy_(og.bias_ih_l0[rows])
        ng.bias_hh_l0.copy_(og.bias_hh_l0[rows])
        cols = torch.cat([torch.arange(v), v + keep, v + no + torch.arange(net.mean.numel())])
        gg, ogg = out.gain_gru, net.gain_gru
        gg.weight_ih_l0.copy_(ogg.weight_ih_l0[:, cols])
        gg.weight_hh_l0.copy_(ogg.weight_hh_l0)
        gg.bias_ih_l0.copy_(ogg.bias_ih_l0 + ogg.weight_ih_l0[:, v + drop] @ u[:, drop].mean(0))
        gg.bias_hh_l0.copy_(ogg.bias_hh_l0)
    return out


def folded(net: GainNet) -> GainNet:
    """A copy taking raw features: (x - mean) / std folded into every layer that reads x.

    x feeds the first Dense and the last columns of both concatenations, so
    ``W x_n + b = (W / std) x + (b - W mean / std)`` on those columns.
    """
    import copy

    out = copy.deepcopy(net).double()
    mean, std = out.mean.clone(), out.std.clone()
    nf = mean.numel()
    with torch.no_grad():
        readers = [(out.dense, "weight", "bias")]
        if isinstance(out, GainNet):
            readers += [(out.noise_gru, "weight_ih_l0", "bias_ih_l0"),
                        (out.gain_gru, "weight_ih_l0", "bias_ih_l0")]
        for lin, wname, bname in readers:
            w, b = getattr(lin, wname), getattr(lin, bname)
            cols = w[:, w.shape[1] - nf:]
            b -= cols @ (mean / std)
            cols /= std
        out.mean.zero_()
        out.std.fill_(1.0)
    out.norm_folded = True
    return out.float()


class _Export(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        gains, vad, _ = self.net(x)
        return (gains, vad) if vad is not None else gains


def export_onnx(net, path, frames: int = 8) -> None:
    """ONNX graph of the folded net: features [1, T, F] -> gains [1, T, B] (, vad [1, T, 1])."""
    f = folded(net).eval()
    x = torch.zeros(1, frames, f.dense.in_features)
    names = ["gains", "vad"] if isinstance(net, GainNet) else ["gains"]
    axes = {k: {1: "T"} for k in ["features"] + names}
    torch.onnx.export(_Export(f), (x,), str(path), input_names=["features"],
                      output_names=names, dynamo=False, dynamic_axes=axes, opset_version=17)
