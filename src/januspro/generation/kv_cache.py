"""Preallocated (static) key/value cache.

One allocation holds every layer's keys and values for the whole request, so decode steps
never allocate, the tensors the model writes into keep their addresses (what CUDA graphs need),
and memory use is known before the first step.
"""

from __future__ import annotations

import torch

from januspro.config import LanguageConfig


class StaticKVCache:
    """Keys and values `[layers, batch, kv_heads, capacity, head_dim]`."""

    def __init__(self, config: LanguageConfig, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> None:
        shape = (config.num_hidden_layers, batch, config.kv_heads, capacity, config.dim_per_head)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)

    @property
    def batch(self) -> int:
        return self.keys.shape[1]

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def layers(self, length: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (k, v) views over the first `length` slots (all slots if None)."""
        stop = self.capacity if length is None else length
        return [(self.keys[i, :, :, :stop], self.values[i, :, :, :stop]) for i in range(self.keys.shape[0])]

    @staticmethod
    def bytes_needed(config: LanguageConfig, batch: int, capacity: int, dtype: torch.dtype) -> int:
        element = torch.empty((), dtype=dtype).element_size()
        return 2 * config.num_hidden_layers * batch * config.kv_heads * capacity * config.dim_per_head * element

    def grown(self, capacity: int) -> "StaticKVCache":
        """A copy with room for `capacity` slots (for conversations that outgrow the cache)."""
        layers, batch, heads, old, dim = self.keys.shape
        new = StaticKVCache.__new__(StaticKVCache)
        new.keys = self.keys.new_zeros((layers, batch, heads, capacity, dim))
        new.values = self.values.new_zeros((layers, batch, heads, capacity, dim))
        new.keys[:, :, :, :old] = self.keys
        new.values[:, :, :, :old] = self.values
        return new

    def broadcast_rows(self, source_rows: torch.Tensor, capacity: int) -> "StaticKVCache":
        """A new cache whose row i holds this cache's row `source_rows[i]` (e.g. one prefilled
        prompt copied to every image of a request), with room for `capacity` slots."""
        layers, _, heads, filled, dim = self.keys.shape
        new = StaticKVCache.__new__(StaticKVCache)
        shape = (layers, source_rows.numel(), heads, capacity, dim)
        new.keys = self.keys.new_zeros(shape)
        new.values = self.values.new_zeros(shape)
        new.keys[:, :, :, :filled] = self.keys.index_select(1, source_rows)
        new.values[:, :, :, :filled] = self.values.index_select(1, source_rows)
        return new
