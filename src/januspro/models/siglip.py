"""SigLIP vision transformer: the understanding encoder.

The layout follows timm's `VisionTransformer` as Janus builds it for `siglip_large_patch16_384`:
a strided-conv patch embedding with bias, a learned absolute position embedding, no class
token, pre-norm blocks (LayerNorm eps 1e-6, fused qkv with bias, exact GELU MLP) and a final
LayerNorm. Janus feeds the final norm's output for all patches (576 at 384 px) to the aligner.

The checkpoint also carries an attention-pooling head (`attn_pool`); Janus never runs it, so
it is built only to hold those weights when the checkpoint has them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from januspro.config import VisionConfig


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, as one strided convolution."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, config.width, kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # [B, 3, H, W] -> [B, D, H/p, W/p] -> [B, N, D]
        return self.proj(pixels).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with a fused qkv projection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        # [B, N, 3D] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, width))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.attn = Attention(config.width, config.heads)
        self.norm2 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.mlp = Mlp(config.width, config.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AttentionPoolHead(nn.Module):
    """SigLIP's MAP head (a learned latent query attending over all tokens).

    Janus loads these weights but does not use them; `forward` exists so that the module is
    complete and testable, e.g. for SigLIP-style contrastive training of a small encoder.
    """

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        width = config.width
        self.heads = config.heads
        self.latent = nn.Parameter(torch.zeros(1, 1, width))
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp = Mlp(width, config.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        head_dim = width // self.heads
        # [B, heads, 1, hd] query from the latent; keys/values from the tokens.
        q = self.q(self.latent.expand(batch, -1, -1)).view(batch, 1, self.heads, head_dim).transpose(1, 2)
        kv = self.kv(x).view(batch, tokens, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        pooled = F.scaled_dot_product_attention(q, kv[0], kv[1]).transpose(1, 2).reshape(batch, 1, width)
        pooled = self.proj(pooled)
        pooled = pooled + self.mlp(self.norm(pooled))
        return pooled[:, 0]  # [B, D]


class SigLIPViT(nn.Module):
    """The ViT itself (official name: `vision_model.vision_tower`)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, config.width))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_built_layers))
        self.norm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.attn_pool = AttentionPoolHead(config) if config.attn_pool else None

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] normalised pixels -> [B, N, D] final-norm features of every patch."""
        x = self.patch_embed(pixels) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class VisionTower(nn.Module):
    """Understanding encoder (official name: `vision_model`): pixels -> patch features.

    A thin holder that keeps the official parameter names (`vision_model.vision_tower.*`)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.vision_tower = SigLIPViT(config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Cast at the boundary: the processor yields float32, the tower may run in bf16.
        pixels = pixels.to(self.vision_tower.pos_embed.dtype)
        return self.vision_tower(pixels)  # [B, num_patches, width]
