"""Generation head: LLM hidden state -> logits over the VQ codebook.

Replaces the text head when the model draws image tokens: Linear, exact GELU, Linear, with the
official names `output_mlp_projector` and `vision_head`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from januspro.config import GenHeadConfig


class GenerationHead(nn.Module):
    def __init__(self, config: GenHeadConfig) -> None:
        super().__init__()
        self.output_mlp_projector = nn.Linear(config.n_embed, config.image_token_embed)
        self.vision_head = nn.Linear(config.image_token_embed, config.image_token_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., n_embed] -> [..., codebook_size] logits"""
        return self.vision_head(F.gelu(self.output_mlp_projector(hidden)))
