"""Golden cases for the elementwise and arithmetic ops that predate the harness."""

import torch

from golden import Cases

c = Cases("basics")
c.add("exp", torch.exp, [c.rand(3, 4)])
c.add("sigmoid", torch.sigmoid, [c.rand(3, 4, lo=-6, hi=6)])
c.add("tanh", torch.tanh, [c.rand(2, 5)])
c.add("mul_broadcast", torch.mul, [c.rand(2, 1, 4), c.rand(3, 1)])
c.add("div_broadcast", torch.div, [c.rand(2, 3), c.rand(3, lo=0.5, hi=2)])
c.add("sum_axes", lambda x: x.sum(dim=(0, 2)), [c.rand(2, 3, 4)])
c.add("max_axis", lambda x: x.amax(dim=-1), [c.rand(3, 5)])
c.save()
