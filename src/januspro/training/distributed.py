"""Process-group plumbing for `torchrun`: one process per device (or two CPU processes with
gloo), DDP by default, FSDP as an option. Everything degrades to a no-op in a single process."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum a few numbers over all processes (one collective)."""
    if not info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def wrap(module: nn.Module, info: DistInfo, strategy: str, device: torch.device) -> nn.Module:
    """DDP or FSDP around the training module; unchanged in a single process."""
    if not info.enabled:
        return module
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        inner = module.model if hasattr(module, "model") else module
        for layer in inner.language_model.model.layers:
            fully_shard(layer)
        fully_shard(module)
        return module
    device_ids = [device.index or 0] if device.type == "cuda" else None
    # Processes may run different numbers of micro-batches in a step: DDP's collectives are the
    # gradient all-reduce in the backward outside `no_sync` and the buffer sync in the first
    # forward after it, once a step in every process either way.
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=False)


def no_sync(module: nn.Module, last: bool) -> ContextManager[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of a step (DDP)."""
    if last or not isinstance(module, nn.parallel.DistributedDataParallel):
        return nullcontext()
    return module.no_sync()


def full_state_dict(module: nn.Module, info: DistInfo) -> dict[str, torch.Tensor]:
    """The complete (unsharded) state dict of the underlying model, on the CPU."""
    inner = module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
    inner = inner.model if hasattr(inner, "model") else inner
    if info.enabled and _sharded(inner):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().cpu() for k, v in inner.state_dict().items()}


def _sharded(module: nn.Module) -> bool:
    return any(type(p).__name__ == "DTensor" for p in module.parameters())


def optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer, info: DistInfo) -> dict:
    """The optimizer state to checkpoint: complete (gathered) under FSDP."""
    if info.enabled and _sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(module, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer, state: dict, info: DistInfo) -> None:
    if info.enabled and _sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(module, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
