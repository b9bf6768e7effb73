"""PyTorch streaming modules that carry their convolution caches by hand, as real
streaming exports do (GTCRN's stream model, DPCRN/CRN and TCN stream exports): per call
one frame, ``cat = torch.cat([cache, x], time)``, a convolution without padding over
time, ``cache_out = cat[:, :, 1:]``; recurrent states as inputs and outputs too.

Written from the published descriptions with small sizes (random weights): used by
tests/test_convert_onnx_conv_caches.py.
"""

import torch
from torch import nn
from torch.nn import functional as F


class StreamTCN(nn.Module):
    """A causal TCN: 1x1 input conv, dilated Conv1d k=3 (d = 1, 2, 4) each with its own
    cache of 2 d frames, residual, Linear head. One frame ``x`` [1, 1, cin] per call."""

    DILATIONS = (1, 2, 4)

    def __init__(self, cin=16, ch=24, out=4):
        super().__init__()
        self.inp = nn.Conv1d(cin, ch, 1)
        self.convs = nn.ModuleList(nn.Conv1d(ch, ch, 3, dilation=d) for d in self.DILATIONS)
        self.prelu = nn.PReLU(ch)
        self.head = nn.Linear(ch, out)

    def caches(self, batch=1):
        return [torch.zeros(batch, self.inp.out_channels, 2 * d) for d in self.DILATIONS]

    def forward(self, x, cache1, cache2, cache3):         # [1, 1, cin], [1, ch, 2d] ...
        h = F.relu(self.inp(x.transpose(1, 2)))            # [1, ch, 1]
        outs = []
        for conv, cache in zip(self.convs, (cache1, cache2, cache3), strict=True):
            cat = torch.cat([cache, h], dim=2)
            h = self.prelu(conv(cat)) + h
            outs.append(cat[:, :, 1:])
        return (torch.sigmoid(self.head(h.transpose(1, 2))), *outs)


class GTBlock(nn.Module):
    """GTCRN's stream GT-conv block (grouped temporal convolution): a grouped 1x1 conv,
    a depthwise (3, 3) conv over (time, freq) dilated in time, padded in freq only, its
    time cache passed in and out, BatchNorm + PReLU, a grouped 1x1 conv, residual."""

    def __init__(self, ch, d):
        super().__init__()
        self.d = d
        self.point1, self.bn1 = nn.Conv2d(ch, ch, 1, groups=2), nn.BatchNorm2d(ch)
        self.depth = nn.Conv2d(ch, ch, (3, 3), dilation=(d, 1), padding=(0, 1), groups=ch)
        self.bn2, self.act = nn.BatchNorm2d(ch), nn.PReLU(ch)
        self.point2, self.bn3 = nn.Conv2d(ch, ch, 1, groups=2), nn.BatchNorm2d(ch)

    def forward(self, x, cache):                            # [1, C, 1, F], [1, C, 2d, F]
        h = F.prelu(self.bn1(self.point1(x)), self.act.weight)
        cat = torch.cat([cache, h], dim=2)
        h = self.act(self.bn2(self.depth(cat)))
        return self.bn3(self.point2(h)) + x, cat[:, :, 1:]


class GTCRNStream(nn.Module):
    """A GTCRN-style stream model: conv encoder over (time, freq) with a stride in freq,
    GT-conv blocks of time dilations 1, 2, 5 sharing one packed cache ``[1, C, 16, F]``
    (sliced 0:2, 2:6, 6:16, given back concatenated, as GTCRN's ``conv_cache``), a GRU
    over the flattened step (its ``h`` in and out), a sigmoid mask over the bins."""

    DILATIONS = (1, 2, 5)

    def __init__(self, bins=33, ch=8, hidden=32):
        super().__init__()
        self.enc = nn.Conv2d(1, ch, (1, 3), stride=(1, 2), padding=(0, 1))
        self.bn, self.act = nn.BatchNorm2d(ch), nn.PReLU(ch)
        self.blocks = nn.ModuleList(GTBlock(ch, d) for d in self.DILATIONS)
        self.freq = (bins + 1) // 2
        self.gru = nn.GRU(ch * self.freq, hidden, batch_first=True)
        self.mask = nn.Linear(hidden, bins)

    def caches(self, batch=1):
        return (torch.zeros(batch, self.enc.out_channels, 2 * sum(self.DILATIONS), self.freq),
                torch.zeros(1, batch, self.gru.hidden_size))

    def forward(self, x, conv_cache, h):                    # [1, 1, bins], [1, C, 16, F']
        z = self.act(self.bn(self.enc(x.unsqueeze(1))))     # [1, C, 1, F']
        outs, at = [], 0
        for blk in self.blocks:
            z, c = blk(z, conv_cache[:, :, at:at + 2 * blk.d])
            outs.append(c)
            at += 2 * blk.d
        y, hn = self.gru(z.permute(0, 2, 1, 3).flatten(2), h)
        return torch.sigmoid(self.mask(y)), torch.cat(outs, dim=2), hn


class CRNStream(nn.Module):
    """A CRN (Tan and Wang) in its streaming form: two causal Conv2d (2, 3) encoder layers
    with a stride of 2 in freq, each with a one-frame cache, an LSTM over the flattened
    step (``h``, ``c`` in and out), a Linear + sigmoid mask."""

    def __init__(self, bins=33, hidden=48):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, (2, 3), stride=(1, 2)), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, (2, 3), stride=(1, 2)), nn.BatchNorm2d(16)
        self.f1 = (bins - 3) // 2 + 1
        self.f2 = (self.f1 - 3) // 2 + 1
        self.lstm = nn.LSTM(16 * self.f2, hidden, batch_first=True)
        self.mask = nn.Linear(hidden, bins)

    def caches(self, batch=1):
        hid = self.lstm.hidden_size
        return (torch.zeros(batch, 1, 1, self.conv1.in_channels * 0 + 33),
                torch.zeros(batch, 8, 1, self.f1),
                torch.zeros(1, batch, hid), torch.zeros(1, batch, hid))

    def forward(self, x, cache1, cache2, h, c):             # [1, 1, bins] ...
        a = torch.cat([cache1, x.unsqueeze(1)], dim=2)      # [1, 1, 2, bins]
        z = F.elu(self.bn1(self.conv1(a)))
        b = torch.cat([cache2, z], dim=2)
        z = F.elu(self.bn2(self.conv2(b)))
        y, (hn, cn) = self.lstm(z.permute(0, 2, 1, 3).flatten(2), (h, c))
        return torch.sigmoid(self.mask(y)), a[:, :, 1:], b[:, :, 1:], hn, cn


class InPlaceEncoder(nn.Module):
    """Two depthwise (3, 3) convs dilated 1 and 2 in time, their caches slices of one
    ``[1, C, 6, F]`` tensor written back in place, as GTCRN's stream encoder does."""

    def __init__(self, ch=4):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(ch, ch, (3, 3), dilation=(d, 1), padding=(0, 1),
                                             groups=ch) for d in (1, 2))

    def forward(self, x, conv_cache):
        at = 0
        for conv in self.convs:
            n = 2 * conv.dilation[0]
            cat = torch.cat([conv_cache[:, :, at:at + n], x], 2)
            x = torch.tanh(conv(cat))
            conv_cache[:, :, at:at + n] = cat[:, :, 1:]
            at += n
        return x, conv_cache


class GTCRNInPlace(nn.Module):
    """GTCRN's stream layout: one ``conv_cache`` ``[2, 1, C, 6, F]`` (encoder, decoder)
    whose rows and slices are written in place; one frame ``[1, C, 1, F]`` per call."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = InPlaceEncoder(), InPlaceEncoder()

    def forward(self, x, conv_cache):
        conv_cache = conv_cache.clone()
        z, conv_cache[0] = self.enc(x, conv_cache[0])
        z, conv_cache[1] = self.dec(z, conv_cache[1])
        return z, conv_cache
