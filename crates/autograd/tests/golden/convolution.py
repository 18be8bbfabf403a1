"""Golden cases for the general convolutions and pools: conv2d with per-axis stride and
padding, dilation and groups (depthwise too), conv_transpose2d with the same and output
padding, conv1d, and avg/max pooling with padding, ceil mode and both count_include_pad
settings. The arguments go in `extra`, so the Rust side reads them from the file."""

import torch
import torch.nn.functional as F

from golden import Cases

c = Cases("convolution")


def conv2d(x, w, *b, stride, padding, dilation, groups):
    return F.conv2d(x, w, *b, stride=stride.tolist(), padding=padding.tolist(),
                    dilation=dilation.tolist(), groups=int(groups))


def conv_case(name, x, w, bias, stride, padding, dilation=(1, 1), groups=1):
    inputs = [c.rand(*x), c.rand(*w, lo=-0.5, hi=0.5)]
    if bias:
        inputs.append(c.rand(w[0], lo=-0.5, hi=0.5))
    extra = dict(stride=torch.tensor(stride), padding=torch.tensor(padding),
                 dilation=torch.tensor(dilation), groups=torch.tensor(groups))
    c.add(name, conv2d, inputs, extra)


conv_case("conv2d_per_axis", [2, 3, 7, 6], [4, 3, 3, 2], True, (2, 1), (1, 0))
conv_case("conv2d_dilated", [1, 2, 9, 8], [3, 2, 3, 3], False, (1, 2), (2, 1), (2, 3))
conv_case("conv2d_groups", [2, 4, 6, 5], [6, 2, 3, 2], True, (1, 1), (1, 1), groups=2)
conv_case("conv2d_depthwise", [2, 3, 7, 7], [3, 1, 3, 3], True, (2, 2), (1, 1), groups=3)
conv_case("conv2d_depthwise_multiplier", [1, 2, 5, 6], [4, 1, 2, 3], False, (1, 1), (0, 1),
          (2, 1), groups=2)
conv_case("conv2d_grouped_dilated_strided", [3, 6, 8, 7], [3, 2, 2, 3], True, (3, 2), (1, 2),
          (2, 2), groups=3)
# Square arguments through conv2d_with: the fast kernels.
conv_case("conv2d_square", [2, 3, 6, 6], [4, 3, 3, 3], True, (2, 2), (1, 1))


def conv_transpose2d(x, w, *b, stride, padding, output_padding, dilation, groups):
    return F.conv_transpose2d(x, w, *b, stride=stride.tolist(), padding=padding.tolist(),
                              output_padding=output_padding.tolist(), groups=int(groups),
                              dilation=dilation.tolist())


def conv_transpose_case(name, x, w, bias, stride, padding, output_padding=(0, 0),
                        dilation=(1, 1), groups=1):
    inputs = [c.rand(*x), c.rand(*w, lo=-0.5, hi=0.5)]
    if bias:
        inputs.append(c.rand(w[1] * groups, lo=-0.5, hi=0.5))
    extra = dict(stride=torch.tensor(stride), padding=torch.tensor(padding),
                 output_padding=torch.tensor(output_padding),
                 dilation=torch.tensor(dilation), groups=torch.tensor(groups))
    c.add(name, conv_transpose2d, inputs, extra)


conv_transpose_case("conv_transpose2d_per_axis", [2, 3, 4, 5], [3, 2, 3, 2], True, (2, 1),
                    (1, 0), (1, 0))
conv_transpose_case("conv_transpose2d_dilated", [1, 2, 3, 4], [2, 3, 3, 3], False, (2, 3),
                    (1, 2), (1, 2), (2, 1))
conv_transpose_case("conv_transpose2d_groups", [2, 4, 3, 3], [4, 3, 2, 3], True, (2, 2),
                    (1, 1), (1, 0), groups=2)
# Output padding 2 ≥ stride 1, allowed because it is below dilation 3.
conv_transpose_case("conv_transpose2d_output_padding_below_dilation", [1, 2, 4, 3],
                    [2, 2, 2, 2], False, (1, 1), (0, 0), (2, 2), (3, 3))
conv_transpose_case("conv_transpose2d_depthwise", [2, 3, 3, 4], [3, 1, 3, 3], True, (2, 2),
                    (1, 1), (1, 1), groups=3)
# Square arguments through conv_transpose2d_with: the fast kernels.
conv_transpose_case("conv_transpose2d_square", [2, 3, 4, 4], [3, 2, 3, 3], True, (2, 2),
                    (1, 1), (1, 1))


def conv1d(x, w, *b, stride, padding, dilation, groups):
    return F.conv1d(x, w, *b, stride=int(stride), padding=int(padding),
                    dilation=int(dilation), groups=int(groups))


def conv1d_case(name, x, w, bias, stride, padding, dilation=1, groups=1):
    inputs = [c.rand(*x), c.rand(*w, lo=-0.5, hi=0.5)]
    if bias:
        inputs.append(c.rand(w[0], lo=-0.5, hi=0.5))
    extra = dict(stride=torch.tensor(stride), padding=torch.tensor(padding),
                 dilation=torch.tensor(dilation), groups=torch.tensor(groups))
    c.add(name, conv1d, inputs, extra)


conv1d_case("conv1d_strided", [2, 3, 11], [4, 3, 3], True, 2, 1)
conv1d_case("conv1d_dilated_groups", [2, 4, 10], [6, 2, 4], False, 1, 3, 2, groups=2)
conv1d_case("conv1d_depthwise", [1, 3, 9], [3, 1, 3], True, 3, 0, groups=3)
conv1d_case("conv1d_plain", [3, 2, 7], [5, 2, 2], True, 1, 0)


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad):
    return F.avg_pool2d(x, kernel.tolist(), stride.tolist(), padding.tolist(),
                        ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad))


def max_pool2d(x, kernel, stride, padding, ceil_mode):
    return F.max_pool2d(x, kernel.tolist(), stride.tolist(), padding.tolist(),
                        ceil_mode=bool(ceil_mode))


def pool_case(name, x, kernel, stride, padding, ceil_mode=False, count_include_pad=None,
              lo=-1.0, hi=1.0):
    extra = dict(kernel=torch.tensor(kernel), stride=torch.tensor(stride),
                 padding=torch.tensor(padding), ceil_mode=torch.tensor(int(ceil_mode)))
    if count_include_pad is None:
        c.add(name, max_pool2d, [c.rand(*x, lo=lo, hi=hi)], extra)
    else:
        extra["count_include_pad"] = torch.tensor(int(count_include_pad))
        c.add(name, avg_pool2d, [c.rand(*x, lo=lo, hi=hi)], extra)


for include in (True, False):
    suffix = "include_pad" if include else "exclude_pad"
    pool_case(f"avg_pool2d_padded_{suffix}", [2, 3, 7, 6], (3, 2), (2, 2), (1, 1),
              count_include_pad=include)
    # Ceil mode: the last windows run past the padded input, and their divisor counts
    # only the part inside it.
    pool_case(f"avg_pool2d_ceil_{suffix}", [2, 2, 6, 7], (3, 3), (2, 2), (1, 1), True,
              count_include_pad=include)
pool_case("avg_pool2d_per_axis", [1, 3, 8, 5], (2, 3), (3, 1), (0, 1), count_include_pad=True)
pool_case("max_pool2d_padded", [2, 3, 7, 6], (3, 3), (2, 1), (1, 1))
pool_case("max_pool2d_ceil", [1, 2, 7, 5], (2, 3), (2, 2), (1, 1), True)
# All negative: a padded zero would win every border window.
pool_case("max_pool2d_padded_negative", [2, 2, 5, 5], (3, 3), (2, 2), (1, 1), lo=-2.0,
          hi=-1.0)
c.save()
