"""Distributed pretraining: global negatives across processes, gradient exchange, a launcher.

Two ways to name the group of processes, one formula:

* a :class:`DistributedContext` (convirt's own c10d Gloo group, created from the torchrun
  environment: ``DistributedContext.from_environment()``), which runs the C++ implementation, or
* a ``torch.distributed`` process group (or ``None`` once ``torch.distributed`` is initialised),
  for programs that already use ``torch.distributed``: the same loss in PyTorch ops over that group.

Either way the returned loss is the loss of one process holding the whole global batch, the same
value on every rank, and its gradient with respect to this rank's embeddings is exactly that
process's gradient for these rows, so summing parameter gradients over ranks
(:class:`GradientSynchronizer`, or ``all_reduce`` with SUM) reproduces one-process training.
"""
from __future__ import annotations

from typing import List, NamedTuple, Sequence, Union

import torch
import torch.distributed as _tdist

from ._C import INFONCE_DEFAULTS as _LOSS_DEFAULTS
from ._C import dist as _dist

DistributedContext = _dist.DistributedContext
GradientSynchronizer = _dist.GradientSynchronizer
gather_with_grad = _dist.gather_with_grad
gloo_available = _dist.gloo_available
find_free_port = _dist.find_free_port

__all__ = [
    "DistributedContext",
    "GradientSynchronizer",
    "InfoNCEOutput",
    "gather_with_grad",
    "gloo_available",
    "infonce_loss_distributed",
    "broadcast_parameters",
    "shard_range",
    "launch",
    "launch_local",
    "find_free_port",
]


class InfoNCEOutput(NamedTuple):
    """The global loss and the global batch's statistics (identical on every rank)."""

    loss: torch.Tensor
    image_to_text: torch.Tensor
    text_to_image: torch.Tensor
    image_to_text_accuracy: torch.Tensor
    text_to_image_accuracy: torch.Tensor


def shard_range(total: int, rank: int, world_size: int) -> range:
    """The contiguous rows ``rank`` owns of ``total`` (shard sizes differ by at most one).

    Example::

        rows = convirt.dist.shard_range(10, rank=1, world_size=3)   # range(4, 7)
    """
    begin, end = _dist.shard_range(total, rank, world_size)
    return range(begin, end)


def launch(argv: Sequence[str], nproc: int = 1, nnodes: int = 1, node_rank: int = 0,
           master_addr: str = "127.0.0.1", master_port: int = 0,
           kill_grace_seconds: float = 5.0) -> int:
    """Runs ``argv`` as ``nproc`` ranks with torchrun's environment; returns 0, or the status of
    the first rank to fail (exit code, or 128 + signal) after stopping the other ranks.

    Example::

        rc = convirt.dist.launch([sys.executable, "train.py"], nproc=2)
    """
    return _dist.launch(list(argv), nproc, nnodes, node_rank, master_addr, master_port,
                        kill_grace_seconds)


def launch_local(nproc: int, argv: Sequence[str]) -> int:
    """``convirt launch --nproc N -- argv...``: :func:`launch` on this machine with a free port."""
    return launch(argv, nproc=nproc)


Group = Union[DistributedContext, "_tdist.ProcessGroup", None]


def _resolve(group: Group):
    if isinstance(group, DistributedContext):
        return group
    if group is None and not (_tdist.is_available() and _tdist.is_initialized()):
        return DistributedContext()  # one process
    return group  # a torch.distributed group (None: the default group)


class _TorchGatherWithGrad(torch.autograd.Function):
    """All-gather of uneven row blocks over a torch.distributed group; backward all-reduces the
    gradient and keeps this rank's rows (Gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, group, sizes: List[int]):
        rank = _tdist.get_rank(group)
        ctx.group, ctx.offset, ctx.rows = group, sum(sizes[:rank]), local.shape[0]
        width = max(sizes)
        padded = local.new_zeros((width,) + tuple(local.shape[1:]))
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in sizes]
        _tdist.all_gather(parts, padded.contiguous(), group=group)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)], 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        _tdist.all_reduce(grad, op=_tdist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.offset: ctx.offset + ctx.rows], None, None


def _torch_loss(v, u, group, temperature, weight, normalize, eps) -> InfoNCEOutput:
    if v.dim() != 2 or u.dim() != 2 or v.shape != u.shape:
        raise ValueError(f"image_emb and text_emb must be 2-D [n, D] of the same shape, got "
                         f"{list(v.shape)} and {list(u.shape)}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"image_to_text_weight must be in [0, 1], got {weight}")
    world = _tdist.get_world_size(group)
    sizes_t = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    _tdist.all_gather(sizes_t, torch.tensor([v.shape[0]], dtype=torch.long), group=group)
    sizes = [int(s.item()) for s in sizes_t]
    total = sum(sizes)
    if total < 1:
        raise ValueError(f"the global batch must have at least one row, got 0 on all {world} ranks")
    offset = sum(sizes[: _tdist.get_rank(group)])
    acc = torch.float64 if v.dtype == torch.float64 else torch.float32
    tau = temperature if isinstance(temperature, torch.Tensor) else torch.tensor(float(temperature))
    if float(tau) <= 0:
        raise ValueError(f"temperature must be > 0, got {float(tau)}")
    tau = tau.reshape(()).to(v.device, acc)
    a, b = v.to(acc), u.to(acc)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
        b = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    d, n = a.shape[1], a.shape[0]
    gathered = _TorchGatherWithGrad.apply(torch.cat([a, b], 1), group, sizes)
    all_a, all_b = gathered[:, :d], gathered[:, d:]
    logits_v = a @ all_b.t() / tau
    logits_u = b @ all_a.t() / tau
    diag_v = logits_v[:, offset: offset + n].diagonal()
    diag_u = logits_u[:, offset: offset + n].diagonal()
    i2t = (torch.logsumexp(logits_v, 1) - diag_v).sum()
    t2i = (torch.logsumexp(logits_u, 1) - diag_u).sum()
    part = (weight * i2t + (1 - weight) * t2i) / total
    with torch.no_grad():
        acc_v = (diag_v >= logits_v.max(1).values).to(acc).sum() if n else part.new_zeros(())
        acc_u = (diag_u >= logits_u.max(1).values).to(acc).sum() if n else part.new_zeros(())
        stats = torch.stack([part.detach(), i2t.detach(), t2i.detach(), acc_v, acc_u])
    _tdist.all_reduce(stats, op=_tdist.ReduceOp.SUM, group=group)
    # The global value on every rank; (part - part.detach()) is zero and carries the local gradient.
    loss = stats[0] + (part - part.detach())
    return InfoNCEOutput(loss, stats[1] / total, stats[2] / total, stats[3] / total,
                         stats[4] / total)


def infonce_loss_distributed(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    group: Group = None,
    temperature: Union[float, torch.Tensor] = _LOSS_DEFAULTS["temperature"],
    image_to_text_weight: float = _LOSS_DEFAULTS["image_to_text_weight"],
    normalize: bool = True,
    eps: float = 1e-12,
    return_stats: bool = False,
):
    """ConVIRT's loss over the global batch: this rank's [n, D] rows against every rank's columns.

    Args:
        image_emb, text_emb: this rank's [n, D] embeddings (n may differ between ranks).
        group: a :class:`DistributedContext`, a ``torch.distributed`` process group, or None (the
            default ``torch.distributed`` group if initialised, else a single process).
        temperature: tau > 0, or a 0-dim tensor that receives a gradient (learnable).
        image_to_text_weight, normalize, eps: as :func:`convirt.infonce_loss`.
        return_stats: also return the global directional losses and accuracies.

    Example::

        ctx = convirt.dist.DistributedContext.from_environment()
        loss = convirt.dist.infonce_loss_distributed(v, u, ctx)
        loss.backward()
    """
    g = _resolve(group)
    if isinstance(g, DistributedContext):
        out = InfoNCEOutput(*_dist.infonce_loss_distributed(
            image_emb, text_emb, g, temperature, image_to_text_weight, normalize, eps))
    else:
        out = _torch_loss(image_emb, text_emb, g, temperature, image_to_text_weight, normalize, eps)
    return out if return_stats else out.loss


def broadcast_parameters(module: torch.nn.Module, group: Group = None, root: int = 0) -> None:
    """Copies rank ``root``'s parameters and buffers into every rank's ``module``.

    Example::

        convirt.dist.broadcast_parameters(model, ctx)
    """
    g = _resolve(group)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if isinstance(g, DistributedContext):
                g.broadcast_(t.data, root)
            else:
                _tdist.broadcast(t.data, src=root, group=g)
