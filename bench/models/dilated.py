"""Dilated convolutions that skip the taps reading only zero padding (small feature maps).

A k x k "same" convolution (stride 1, zero padding ``dilation * (k // 2)``) whose dilation is at least the
height and the width of its input reads every tap but the centre from the padding: the demo's 32x32 images reach
the last backbone stage as 4x4 maps, where the dilation-4 3x3 convolution of ``layer4`` has 8 of its 9 taps on
zeros. There it equals a 1x1 convolution with the centre weights, in value and in gradient (the other weights
get a zero gradient either way): the same function, computed with 1/9 of the multiplications. Floats are summed
in another order, so results agree to rounding, not to the bit (docs/synthetic.md, "Demo scale"). On maps larger
than the dilation (a Cityscapes crop: 97x97 at layer4) the convolution runs unchanged.

Usage::

    converted = skip_padding_taps(backbone)   # in place: the eligible nn.Conv2d become SkipPaddingTapsConv2d
    # the parameters, their names and the state_dict stay the same (checkpoints load as before)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SkipPaddingTapsConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes only the centre tap when the other taps read nothing but zero padding."""

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W); a 1x1 convolution with the centre weights when H, W <= dilation."""
        if x.shape[-2] <= self.dilation[0] and x.shape[-1] <= self.dilation[1]:
            kh, kw = self.kernel_size[0] // 2, self.kernel_size[1] // 2
            centre = self.weight[:, :, kh : kh + 1, kw : kw + 1]
            return F.conv2d(x, centre, self.bias, groups=self.groups)
        return super().forward(x)


def eligible(conv: nn.Conv2d) -> bool:
    """Stride 1, odd kernel larger than 1, zero "same" padding (dilation * (k // 2)) and dilation > 1."""
    kernel, dilation = conv.kernel_size, conv.dilation
    return (
        type(conv) is nn.Conv2d
        and conv.stride == (1, 1)
        and conv.padding_mode == "zeros"
        and all(k > 1 and k % 2 == 1 for k in kernel)
        and all(d > 1 for d in dilation)
        and conv.padding == tuple(d * (k // 2) for d, k in zip(dilation, kernel))
    )


def skip_padding_taps(module: nn.Module) -> int:
    """Turn every eligible ``nn.Conv2d`` in ``module`` into a ``SkipPaddingTapsConv2d`` (in place, same
    parameters); returns how many were turned."""
    converted = 0
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and eligible(conv):
            conv.__class__ = SkipPaddingTapsConv2d
            converted += 1
    return converted
