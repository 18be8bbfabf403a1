"""Golden cases for the losses: each loss, each option (class weights, an ignored target,
label smoothing, soft targets, pos_weight), inputs [N, C] and [N, C, d1, ...], and the
three reductions (`tests/golden_losses.rs`). Targets and option values go in `extra`."""

import torch
import torch.nn.functional as F

from golden import Cases

c = Cases("losses")
ints = torch.tensor


def probs(*shape):
    """Rows of class probabilities along axis 1."""
    return torch.softmax(c.rand(*shape, lo=-2, hi=2), dim=1)


def log_probs(*shape):
    return torch.log_softmax(c.rand(*shape, lo=-2, hi=2), dim=1)


def ce(x, target, weight=None, ignore=-100, smoothing=0.0, reduction="mean"):
    return F.cross_entropy(
        x,
        target,
        weight=weight,
        ignore_index=int(ignore),
        label_smoothing=float(smoothing),
        reduction=reduction,
    )


def nll(x, target, weight=None, ignore=-100, reduction="mean"):
    return F.nll_loss(x, target, weight=weight, ignore_index=int(ignore), reduction=reduction)


# Existing losses, their first API.
c.add("mse", F.mse_loss, [c.rand(3, 4), c.rand(3, 4)])
c.add("bce", F.binary_cross_entropy, [c.rand(3, 4, lo=0.05, hi=0.95), c.rand(3, 4, lo=0, hi=1)])
c.add("cross_entropy_plain", ce, [c.rand(5, 4, lo=-2, hi=2)], extra={"target": ints([0, 3, 1, 3, 2])})

# cross_entropy with class indices.
y = ints([0, 3, 1, 3, 2])
w = c.rand(4, lo=0.2, hi=2)
for r in ["mean", "sum", "none"]:
    c.add(
        f"ce_{r}",
        lambda x, target, r=r: ce(x, target, reduction=r),
        [c.rand(5, 4, lo=-2, hi=2)],
        extra={"target": y},
    )
c.add("ce_weight", ce, [c.rand(5, 4, lo=-2, hi=2)], extra={"target": y, "weight": w})
c.add("ce_ignore", ce, [c.rand(5, 4, lo=-2, hi=2)], extra={"target": y, "ignore": 3})
c.add("ce_smoothing", ce, [c.rand(5, 4, lo=-2, hi=2)], extra={"target": y, "smoothing": 0.1})
for r in ["mean", "sum", "none"]:
    c.add(
        f"ce_all_options_{r}",
        lambda x, target, weight, ignore, smoothing, r=r: ce(
            x, target, weight, ignore, smoothing, reduction=r
        ),
        [c.rand(5, 4, lo=-2, hi=2)],
        extra={"target": y, "weight": w, "ignore": 3, "smoothing": 0.2},
    )
# [N, C, d1, d2] with targets [N, d1, d2]; an ignored value that is no class (255).
y_nd = ints([[[0, 2], [1, 255]], [[2, 0], [255, 1]]])
w3 = c.rand(3, lo=0.2, hi=2)
for r in ["mean", "none"]:
    c.add(
        f"ce_nd_{r}",
        lambda x, target, weight, ignore, smoothing, r=r: ce(
            x, target, weight, ignore, smoothing, reduction=r
        ),
        [c.rand(2, 3, 2, 2, lo=-2, hi=2)],
        extra={"target": y_nd, "weight": w3, "ignore": 255, "smoothing": 0.1},
    )

# cross_entropy with probabilities: both inputs get gradients.
c.add("ce_soft", ce, [c.rand(4, 3, lo=-2, hi=2), probs(4, 3)])
c.add(
    "ce_soft_weight_smoothing",
    ce,
    [c.rand(4, 3, lo=-2, hi=2), probs(4, 3)],
    extra={"weight": w3, "smoothing": 0.15},
)
c.add(
    "ce_soft_nd_none",
    lambda x, t: ce(x, t, reduction="none"),
    [c.rand(2, 3, 4, lo=-2, hi=2), probs(2, 3, 4)],
)
c.add(
    "ce_soft_sum",
    lambda x, t: ce(x, t, reduction="sum"),
    [c.rand(4, 3, lo=-2, hi=2), probs(4, 3)],
)

# nll_loss on log-probabilities.
c.add("nll_mean", nll, [log_probs(5, 4)], extra={"target": y})
c.add(
    "nll_weight_ignore",
    nll,
    [log_probs(5, 4)],
    extra={"target": y, "weight": w, "ignore": 1},
)
c.add(
    "nll_nd_sum",
    lambda x, target, weight, ignore: nll(x, target, weight, ignore, reduction="sum"),
    [log_probs(2, 3, 2, 2)],
    extra={"target": y_nd, "weight": w3, "ignore": 255},
)

# binary_cross_entropy_with_logits, large logits included.
logits = lambda *s: c.rand(*s, lo=-30, hi=30)  # noqa: E731
targets = lambda *s: c.rand(*s, lo=0, hi=1)  # noqa: E731
bcel = F.binary_cross_entropy_with_logits
c.add("bce_logits", bcel, [logits(3, 4), targets(3, 4)])
c.add(
    "bce_logits_pos_weight",
    lambda x, t, pos_weight: bcel(x, t, pos_weight=pos_weight),
    [logits(3, 4), targets(3, 4)],
    extra={"pos_weight": c.rand(4, lo=0.2, hi=3)},
)
c.add(
    "bce_logits_weights_sum",
    lambda x, t, weight, pos_weight: bcel(x, t, weight, pos_weight=pos_weight, reduction="sum"),
    [logits(3, 4), targets(3, 4)],
    extra={"weight": c.rand(3, 1, lo=0, hi=2), "pos_weight": c.rand(4, lo=0.2, hi=3)},
)
c.add(
    "bce_logits_none",
    lambda x, t: bcel(x, t, reduction="none"),
    [logits(2, 3, 2), targets(2, 3, 2)],
)

# l1, huber, smooth_l1: differences spread across both sides of delta and beta.
def pair(*s):
    return [c.rand(*s, lo=-2, hi=2), c.rand(*s, lo=-2, hi=2)]


for r in ["mean", "sum", "none"]:
    c.add(f"l1_{r}", lambda x, t, r=r: F.l1_loss(x, t, reduction=r), pair(3, 5))
c.add("huber", lambda x, t, delta: F.huber_loss(x, t, delta=float(delta)), pair(4, 5), extra={"delta": 0.7})
c.add(
    "huber_none",
    lambda x, t, delta: F.huber_loss(x, t, reduction="none", delta=float(delta)),
    pair(4, 5),
    extra={"delta": 1.5},
)
c.add(
    "smooth_l1",
    lambda x, t, beta: F.smooth_l1_loss(x, t, beta=float(beta)),
    pair(4, 5),
    extra={"beta": 0.7},
)
c.add(
    "smooth_l1_sum",
    lambda x, t, beta: F.smooth_l1_loss(x, t, reduction="sum", beta=float(beta)),
    pair(4, 5),
    extra={"beta": 1.5},
)
c.add(
    "smooth_l1_beta0",
    lambda x, t, beta: F.smooth_l1_loss(x, t, beta=float(beta)),
    pair(3, 4),
    extra={"beta": 0.0},
)
c.save()
