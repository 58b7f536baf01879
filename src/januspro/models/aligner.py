"""MLP aligner (`mlp_gelu`): maps encoder features or VQ code embeddings onto the LLM width.

Used twice in Janus: the understanding aligner (SigLIP width -> LLM hidden) and the generation
aligner (VQ code dim 8 -> LLM hidden). Parameter names follow the original `nn.Sequential`
(`layers.0`, `layers.2`, ...: Linear, GELU, Linear, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from januspro.config import AlignerConfig


class MlpAligner(nn.Module):
    def __init__(self, config: AlignerConfig) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Linear(config.input_dim, config.n_embed)]
        for _ in range(1, config.depth):
            modules += [nn.GELU(), nn.Linear(config.n_embed, config.n_embed)]
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., input_dim] -> [..., n_embed]"""
        return self.layers(x)
