"""Golden cases for the indexing ops (index_select, gather, embedding) and for matmul over
every pairing of ranks (`tests/golden_indexing.rs`)."""

import torch
import torch.nn.functional as F

from golden import Cases

c = Cases("indexing")
ints = torch.tensor


def randint(high, *shape):
    return torch.randint(0, high, shape, generator=c.gen)


# index_select: repeats, a negative axis.
c.add(
    "index_select_rows",
    lambda x, index: x.index_select(0, index),
    [c.rand(4, 3)],
    extra={"index": ints([3, 0, 3, 1])},
)
c.add(
    "index_select_last",
    lambda x, index: x.index_select(-1, index),
    [c.rand(2, 3, 5)],
    extra={"index": ints([4, 4, 0])},
)
# gather: an index smaller than the input on the other axes, repeats.
c.add(
    "gather_axis1",
    lambda x, index: torch.gather(x, 1, index),
    [c.rand(3, 4)],
    extra={"index": ints([[0, 3, 3], [1, 1, 0]])},
)
c.add(
    "gather_axis0",
    lambda x, index: torch.gather(x, 0, index),
    [c.rand(3, 4)],
    extra={"index": randint(3, 5, 2)},
)
c.add(
    "gather_last_3d",
    lambda x, index: torch.gather(x, -1, index),
    [c.rand(2, 3, 4)],
    extra={"index": randint(4, 2, 2, 6)},
)
# embedding: ids [N] and [N, T].
c.add(
    "embedding_1d",
    lambda w, ids: F.embedding(ids, w),
    [c.rand(6, 3)],
    extra={"ids": ints([5, 0, 5, 2])},
)
c.add(
    "embedding_2d",
    lambda w, ids: F.embedding(ids, w),
    [c.rand(6, 3)],
    extra={"ids": ints([[1, 4, 4], [0, 5, 1]])},
)
# matmul, every pairing of ranks.
for name, a, b in [
    ("matmul_2d", (3, 4), (4, 2)),
    ("matmul_dot", (5,), (5,)),
    ("matmul_vec_mat", (4,), (4, 3)),
    ("matmul_mat_vec", (3, 4), (4,)),
    ("matmul_stack_mat", (2, 3, 4), (4, 5)),
    ("matmul_stack_vec", (2, 3, 4), (4,)),
    ("matmul_vec_stack", (4,), (2, 4, 3)),
    ("matmul_mat_stack", (3, 4), (2, 4, 5)),
    ("matmul_batched", (2, 3, 4), (2, 4, 5)),
    ("matmul_broadcast", (2, 1, 3, 4), (3, 4, 2)),
    ("matmul_broadcast_both", (1, 3, 2, 4), (2, 1, 4, 3)),
]:
    c.add(name, torch.matmul, [c.rand(*a), c.rand(*b)])
c.save()
