"""LLaMA decoder: the autoregressive transformer shared by both Janus tasks.

RMSNorm (computed in float32), rotary position embeddings (rotate-half convention, as
transformers' Llama), SwiGLU MLP and multi-head attention with optional grouped-query heads.
Parameter names follow transformers' `LlamaForCausalLM` (`model.layers.N.self_attn.q_proj`,
`lm_head`), which is also how the official Janus checkpoints store them.

The KV cache is not part of the module: callers pass, per layer, the key and value buffers
(`[B, kv_heads, S, head_dim]`, usually views of a preallocated static cache) plus the slots
`cache_pos` where this call's keys and values go, and a boolean mask `[B, 1, T, S]` saying which
slots each query may attend to. Without a cache the call is a plain causal forward (training).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from januspro.config import LanguageConfig

KVBuffers = Sequence[tuple[torch.Tensor, torch.Tensor]]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.rms_norm normalises in float32 and rounds to x's dtype, as transformers' LlamaRMSNorm
        # does before its weight multiply; it is one fused kernel where PyTorch has one (CUDA).
        return self.weight * F.rms_norm(x, (x.shape[-1],), eps=self.eps)


def rotary_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for `positions` [B, T] -> two [B, 1, T, head_dim] tensors.

    Computed from positions on the fly (cheap, and free of buffers that meta-device loading
    would leave uninitialised); float32 math as transformers does, then cast to `dtype`."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[..., None] * inv_freq  # [B, T, head_dim/2]
    angles = torch.cat([freqs, freqs], dim=-1)[:, None]  # [B, 1, T, head_dim]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def fuse_linears(linears: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Concatenate the weights (and biases) of linear layers that read the same input, so that
    one matmul replaces several; each layer's parameters become views of the fused tensors, so
    memory use and the state dict stay as they were. For inference after the model is on its
    device (`.to()` would copy the views apart). None if some layer is not a plain float Linear
    (int8, packed), which is then left alone."""
    if not all(type(layer) is nn.Linear and layer.weight.is_floating_point() for layer in linears):
        return None
    with torch.no_grad():
        weight = torch.cat([layer.weight for layer in linears])  # [sum(out), in]
        bias = None
        if linears[0].bias is not None:
            bias = torch.cat([layer.bias for layer in linears])
        start = 0
        for layer in linears:
            stop = start + layer.out_features
            layer.weight = nn.Parameter(weight[start:stop], requires_grad=False)
            if bias is not None:
                layer.bias = nn.Parameter(bias[start:stop], requires_grad=False)
            start = stop
    return weight, bias


def unfuse_linears(linears: Sequence[nn.Linear]) -> None:
    """Undo `fuse_linears`: each layer gets its own trainable copy of its parameters."""
    with torch.no_grad():
        for layer in linears:
            layer.weight = nn.Parameter(layer.weight.detach().clone())
            if layer.bias is not None:
                layer.bias = nn.Parameter(layer.bias.detach().clone())


class Attention(nn.Module):
    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.kv_heads = config.kv_heads
        self.head_dim = config.dim_per_head
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=bias)
        # Set by `fuse_weights` (inference): [q; k; v] weight rows for one matmul, and its bias.
        self.qkv_weight: torch.Tensor | None = None
        self.qkv_bias: torch.Tensor | None = None

    def fuse_weights(self) -> None:
        fused = fuse_linears([self.q_proj, self.k_proj, self.v_proj])
        if fused is not None:
            self.qkv_weight, self.qkv_bias = fused

    def unfuse_weights(self) -> None:
        if self.qkv_weight is not None:
            unfuse_linears([self.q_proj, self.k_proj, self.v_proj])
            self.qkv_weight = self.qkv_bias = None

    def _project(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """q, k (rotated) and v, each [B, heads, T, hd]."""
        batch, tokens, _ = x.shape
        if self.qkv_weight is not None:
            # One matmul for q, k and v, and one rotation for q and k together.
            qkv = F.linear(x, self.qkv_weight, self.qkv_bias)
            qkv = qkv.view(batch, tokens, self.heads + 2 * self.kv_heads, self.head_dim).transpose(1, 2)
            qk = apply_rotary(qkv[:, : self.heads + self.kv_heads], *rope)
            return qk[:, : self.heads], qk[:, self.heads :], qkv[:, self.heads + self.kv_heads :]
        # [B, T, heads*hd] -> [B, heads, T, hd]
        q = self.q_proj(x).view(batch, tokens, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
        return apply_rotary(q, *rope), apply_rotary(k, *rope), v

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        kv: tuple[torch.Tensor, torch.Tensor] | None,
        cache_pos: torch.Tensor | None,
    ) -> torch.Tensor:
        batch, tokens, _ = x.shape
        q, k, v = self._project(x, rope)
        rows = batch
        if kv is not None:
            # Write this call's keys/values into their slots; attend over the given buffer.
            k_buf, v_buf = kv
            rows = k_buf.shape[0]
            if rows < batch:  # rows past the cache's only pad the matmuls (see LlamaModel.forward)
                q, k, v = q[:rows], k[:rows], v[:rows]
            k_buf.index_copy_(2, cache_pos, k.to(k_buf.dtype))
            v_buf.index_copy_(2, cache_pos, v.to(v_buf.dtype))
            k, v = k_buf, v_buf
        gqa = self.kv_heads != self.heads
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=tokens > 1, enable_gqa=gqa)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        out = out.transpose(1, 2).reshape(rows, tokens, -1)
        if rows < batch:
            out = torch.cat([out, out.new_zeros(batch - rows, tokens, out.shape[-1])])
        return self.o_proj(out)


class Mlp(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        bias = config.mlp_bias
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)
        # Set by `fuse_weights` (inference): [gate; up] weight rows for one matmul, and its bias.
        self.gate_up_weight: torch.Tensor | None = None
        self.gate_up_bias: torch.Tensor | None = None

    def fuse_weights(self) -> None:
        fused = fuse_linears([self.gate_proj, self.up_proj])
        if fused is not None:
            self.gate_up_weight, self.gate_up_bias = fused

    def unfuse_weights(self) -> None:
        if self.gate_up_weight is not None:
            unfuse_linears([self.gate_proj, self.up_proj])
            self.gate_up_weight = self.gate_up_bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up_weight is not None:
            gate, up = F.linear(x, self.gate_up_weight, self.gate_up_bias).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = Mlp(config)

    def forward(self, x, rope, mask, kv, cache_pos):  # type: ignore[no-untyped-def]
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, kv, cache_pos)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    """Embedding, decoder layers and final norm (official name: `language_model.model`)."""

    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False

    def fuse_weights(self) -> None:
        """Inference layout: each layer's q/k/v and gate/up projections as one matmul each
        (fewer, larger kernels per decode step; see `fuse_linears`)."""
        for layer in self.layers:
            layer.self_attn.fuse_weights()
            layer.mlp.fuse_weights()

    def unfuse_weights(self) -> None:
        """Undo `fuse_weights` (before training, dtype changes or moves between devices)."""
        for layer in self.layers:
            layer.self_attn.unfuse_weights()
            layer.mlp.unfuse_weights()

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        kv_cache: KVBuffers | None = None,
        cache_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the decoder.

        inputs_embeds: [B, T, D]; positions: [B, T] rotary positions; mask: [B, 1, T, S] bool
        (True = may attend) or None for plain causal attention; kv_cache: per-layer (k, v)
        buffers [B, kv_heads, S, hd] written at `cache_pos` ([T] slot indices).
        Returns the final-norm hidden states [B, T, D].

        The cache may hold fewer rows than `inputs_embeds`: the extra rows then only pad the
        matmuls (their attention output is zero and their results are meaningless). Matmul
        libraries pick kernels by row count, so a request split into chunks that each pad to the
        whole request's rows computes every real row exactly as the unsplit request would.
        """
        config = self.config
        rope = rotary_tables(positions, config.dim_per_head, config.rope_theta, inputs_embeds.dtype)
        x = inputs_embeds
        for index, layer in enumerate(self.layers):
            kv = kv_cache[index] if kv_cache is not None else None
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, rope, mask, kv, cache_pos, use_reentrant=False)
            else:
                x = layer(x, rope, mask, kv, cache_pos)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    """Decoder plus text head (official name: `language_model`)."""

    def __init__(self, config: LanguageConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Text head: [..., D] hidden states -> [..., vocab] logits."""
        return self.lm_head(hidden)
