"""Training in several processes (torchrun): which process this is, and what crosses them.

A stage asked for more than one process (``launch.nproc_per_node`` x ``launch.nnodes``)
re-starts itself under torchrun (:func:`torchrun_command`); each process then calls
:func:`init`, which joins the process group from torchrun's environment (NCCL on GPUs,
gloo on the CPU) and gives it its device. In a single process everything here is a
no-op, so the training code is the same in both.

What looks across the batch must see the global batch: :func:`all_gather` (with
gradients) for the triplet loss's candidates, stage 1's text features and the BN necks
(:class:`GlobalBatchNorm1d`).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from clipreid.errors import ConfigError


@dataclass(frozen=True)
class Process:
    """This process among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The one process that writes outputs, checkpoints and curves."""
        return self.rank == 0


def launched() -> bool:
    """Started by torchrun (its environment is set)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def current() -> Process:
    if not (dist.is_available() and dist.is_initialized()):
        return Process()
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init(device: torch.device, backend: str = "auto") -> tuple[Process, torch.device]:
    """Join torchrun's process group, once; returns this process and its device (the
    node's GPU of its local rank). Without torchrun: a single process, ``device``."""
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
        return Process(), device
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return current(), device


def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """The rows of every process, in rank order (equal row counts); gradients flow back
    to each process's own rows. Alone: ``tensor`` itself."""
    process = current()
    if process.world_size == 1:
        return tensor
    if tensor.requires_grad:
        from torch.distributed.nn.functional import all_gather as gather_with_grad

        with warnings.catch_warnings():  # deprecated for a private API; same semantics
            warnings.simplefilter("ignore", FutureWarning)
            return torch.cat(gather_with_grad(tensor))
    parts = [torch.empty_like(tensor) for _ in range(process.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over processes (in place; returned)."""
    process = current()
    if process.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= process.world_size
    return tensor


def sync_gradients(parameters) -> None:
    """Average the gradients of ``parameters`` over processes (what DDP does for a model;
    for stage 1's prompt vectors, which train outside a DDP module)."""
    if current().world_size > 1:
        for p in parameters:
            if p.grad is not None:
                all_reduce_mean(p.grad)


def shard(count: int, process: Process) -> tuple[int, int]:
    """This process's contiguous share ``[start, stop)`` of ``count`` items: equal
    shares of ceil(count / world_size), the last ones shorter."""
    size = math.ceil(count / process.world_size)
    start = min(count, process.rank * size)
    return start, min(count, start + size)


def gather_shards(local: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` rows that :func:`shard` spread over the processes, back in order."""
    process = current()
    if process.world_size == 1:
        return local
    size = math.ceil(count / process.world_size)
    padded = local.new_zeros((size, *local.shape[1:]))
    padded[: len(local)] = local
    everyone = all_gather(padded.detach()).view(process.world_size, size, *local.shape[1:])
    lengths = [stop - start for start, stop in
               (shard(count, Process(r, process.world_size)) for r in range(process.world_size))]
    return torch.cat([everyone[r, :n] for r, n in enumerate(lengths)])


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the global batch (every
    process's rows, gathered with gradients), as SyncBatchNorm, on any device (torch's
    SyncBatchNorm needs a GPU). Same parameters and buffers as BatchNorm1d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        process = current()
        if not self.training or process.world_size == 1:
            return super().forward(x)
        everyone = all_gather(x)
        out = F.batch_norm(everyone, self.running_mean, self.running_var, self.weight,
                           self.bias, True, self.momentum, self.eps)
        self.num_batches_tracked += 1
        return out[process.rank * len(x): (process.rank + 1) * len(x)]

    @classmethod
    def replacing(cls, bn: nn.BatchNorm1d) -> "GlobalBatchNorm1d":
        out = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                  device=bn.weight.device, dtype=bn.weight.dtype)
        out.load_state_dict(bn.state_dict())
        out.weight.requires_grad_(bn.weight.requires_grad)
        out.bias.requires_grad_(bn.bias.requires_grad)
        out.train(bn.training)
        return out


def torchrun_command(launch, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run ... -m clipreid.cli ARGV`` for ``launch``: one
    node standalone (a free local port), several through the c10d rendezvous at
    ``launch.rdzv_endpoint`` (run the same command on every node)."""
    if launch.nnodes == 1:
        rendezvous = ["--standalone"]
    else:
        if not launch.rdzv_endpoint:
            raise ConfigError("launch.nnodes > 1 needs launch.rdzv_endpoint (host:port of "
                              "the first node)")
        rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", launch.rdzv_endpoint,
                      "--rdzv-id", launch.rdzv_id]
    return [sys.executable, "-m", "torch.distributed.run",
            "--nproc-per-node", str(launch.nproc_per_node), "--nnodes", str(launch.nnodes),
            *rendezvous, "-m", "clipreid.cli", *argv]
