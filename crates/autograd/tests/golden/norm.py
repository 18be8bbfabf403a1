"""Golden cases for layer norm and batch norm (`F.layer_norm`, `F.batch_norm`), and the
running statistics batch norm updates in training (`*_running_mean`, `*_running_var`:
their output is the updated statistic, from the same call as `batch_norm_train_4d`)."""

import torch
import torch.nn.functional as F

from golden import Cases


def batch_norm_train(x, w, b, running_mean, running_var):
    return F.batch_norm(
        x, running_mean.clone(), running_var.clone(), w, b, training=True, momentum=0.1
    )


def updated_running_stats(x, running_mean, running_var):
    """The running mean and variance after one training call (momentum 0.1)."""
    mean, var = running_mean.clone(), running_var.clone()
    F.batch_norm(x, mean, var, training=True, momentum=0.1)
    return mean, var


c = Cases("norm")
c.add(
    "layer_norm_affine",
    lambda x, w, b: F.layer_norm(x, (5,), w, b, eps=1e-5),
    [c.rand(3, 4, 5, lo=-2, hi=2), c.rand(5, lo=0.5, hi=1.5), c.rand(5)],
)
c.add(
    "layer_norm_two_axes",
    lambda x: F.layer_norm(x, (4, 5), eps=1e-5),
    [c.rand(2, 3, 4, 5, lo=-3, hi=1)],
)
c.add(
    "layer_norm_weight_only_large_eps",
    lambda x, w: F.layer_norm(x, (6,), w, None, eps=0.1),
    [c.rand(4, 6, lo=-0.5, hi=0.5), c.rand(6, lo=-1, hi=1)],
)

x4 = c.rand(4, 3, 5, 6, lo=-2, hi=3)
stats = {"running_mean": c.rand(3, lo=-0.5, hi=0.5), "running_var": c.rand(3, lo=0.5, hi=2)}
c.add(
    "batch_norm_train_4d",
    batch_norm_train,
    [x4, c.rand(3, lo=0.5, hi=1.5), c.rand(3)],
    extra=stats,
)
c.add(
    "batch_norm_running_mean",
    lambda x, **s: updated_running_stats(x, **s)[0],
    [x4],
    extra=stats,
    grad=[False],
)
c.add(
    "batch_norm_running_var",
    lambda x, **s: updated_running_stats(x, **s)[1],
    [x4],
    extra=stats,
    grad=[False],
)
c.add(
    "batch_norm_train_2d_plain",
    lambda x: F.batch_norm(x, None, None, training=True, eps=1e-5),
    [c.rand(7, 4, lo=-1, hi=2)],
)
c.add(
    "batch_norm_train_3d",
    lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
    [c.rand(3, 2, 5), c.rand(2, lo=0.5, hi=1.5), c.rand(2)],
)
c.add(
    "batch_norm_eval_4d",
    lambda x, w, b, running_mean, running_var: F.batch_norm(
        x, running_mean, running_var, w, b, training=False, eps=1e-5
    ),
    [c.rand(2, 3, 4, 4, lo=-2, hi=2), c.rand(3, lo=0.5, hi=1.5), c.rand(3)],
    extra={"running_mean": c.rand(3, lo=-0.5, hi=0.5), "running_var": c.rand(3, lo=0.5, hi=2)},
)
c.save()
