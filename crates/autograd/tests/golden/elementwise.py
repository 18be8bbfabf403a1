"""Golden cases for the activations, elementwise maths, softmax family, min/max/arg
reductions, variance and masked selection (`tests/golden_elementwise.rs`). Dropout has no
case: its mask is random."""

import torch
import torch.nn.functional as F

from golden import Cases

c = Cases("elementwise")

# Softmax family, along several axes, negative ones included.
c.add("softmax_last", lambda x: torch.softmax(x, -1), [c.rand(3, 5, lo=-3, hi=3)])
c.add("softmax_axis0", lambda x: torch.softmax(x, 0), [c.rand(4, 3, 2, lo=-3, hi=3)])
c.add("softmax_neg2", lambda x: torch.softmax(x, -2), [c.rand(2, 3, 4, lo=-3, hi=3)])
c.add("log_softmax_last", lambda x: torch.log_softmax(x, -1), [c.rand(3, 5, lo=-3, hi=3)])
c.add("log_softmax_axis1", lambda x: torch.log_softmax(x, 1), [c.rand(2, 4, 3, lo=-3, hi=3)])
c.add("logsumexp_two_axes", lambda x: torch.logsumexp(x, dim=(0, 2)), [c.rand(2, 3, 4)])
# Large inputs: exp alone would overflow float32.
c.add(
    "logsumexp_large_keep",
    lambda x: torch.logsumexp(x, dim=-1, keepdim=True),
    [c.rand(3, 5, lo=50, hi=90)],
)

# Activations and elementwise maths.
c.add("leaky_relu", lambda x: F.leaky_relu(x, 0.1), [c.rand(3, 4)])
c.add("gelu", F.gelu, [c.rand(3, 5, lo=-4, hi=4)])
c.add("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [c.rand(3, 5, lo=-4, hi=4)])
c.add("silu", F.silu, [c.rand(3, 5, lo=-5, hi=5)])
c.add("softplus", F.softplus, [c.rand(3, 4, lo=-5, hi=5)])
c.add(
    "softplus_beta_threshold",
    lambda x: F.softplus(x, beta=2.0, threshold=3.0),
    [c.rand(3, 4, lo=-3, hi=3)],
)
c.add("sin", torch.sin, [c.rand(2, 5, lo=-4, hi=4)])
c.add("cos", torch.cos, [c.rand(2, 5, lo=-4, hi=4)])
c.add("powf", lambda x: x.pow(2.5), [c.rand(3, 4, lo=0.5, hi=2)])
c.add("powf_negative_base", lambda x: x.pow(3.0), [c.rand(3, 4, lo=-2, hi=2)])
c.add("pow_broadcast", torch.pow, [c.rand(2, 3, 4, lo=0.5, hi=2), c.rand(3, 1, lo=-2, hi=2)])
c.add("minimum_broadcast", torch.minimum, [c.rand(2, 1, 4), c.rand(3, 1)])
# Values on a grid of halves: many ties, whose gradient PyTorch splits evenly.
halves = lambda *shape: torch.round(c.rand(*shape) * 2) / 2
c.add("minimum_ties", torch.minimum, [halves(3, 4), halves(3, 4)])

# Min and max over an axis, their positions.
c.add("min_axis", lambda x: x.min(dim=-1).values, [c.rand(3, 5)])
c.add("min_axis_keep", lambda x: x.min(dim=0, keepdim=True).values, [c.rand(4, 3)])
c.add("max_axis_neg", lambda x: x.max(dim=-2).values, [c.rand(2, 3, 4)])
c.add("argmax", lambda x: x.argmax(dim=1), [c.rand(3, 5)])
c.add("argmin_neg", lambda x: x.argmin(dim=-1), [c.rand(2, 3, 4)])
c.add("argmax_ties", lambda x: x.argmax(dim=0), [halves(4, 5)])

# Variance and standard deviation, Bessel-corrected (PyTorch's default) and not.
c.add("var", lambda x: torch.var(x, dim=(0, 2)), [c.rand(3, 4, 5)])
c.add("var_c0_keep", lambda x: torch.var(x, dim=-1, correction=0, keepdim=True), [c.rand(3, 4)])
c.add("std", lambda x: torch.std(x, dim=1), [c.rand(3, 4, 5)])
c.add(
    "std_c0_keep",
    lambda x: torch.std(x, dim=(-1, 0), correction=0, keepdim=True),
    [c.rand(3, 4, 5)],
)

# Selection by a 0/1 mask (stored as float, converted to bool here).
c.add(
    "where_broadcast",
    lambda a, b, cond: torch.where(cond.bool(), a, b),
    [c.rand(3, 4), c.rand(4)],
    extra={"cond": (c.rand(3, 1) < 0).double()},
)
c.add(
    "masked_fill",
    lambda x, mask, value: x.masked_fill(mask.bool(), value),
    [c.rand(3, 4)],
    extra={"mask": torch.tensor([1.0, 0.0, 0.0, 1.0]), "value": -1.5},
)
c.save()
