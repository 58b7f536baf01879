"""The Janus composite: one LLaMA, two decoupled visual pathways.

Understanding: pixels -> SigLIP (`vision_model`) -> MLP (`aligner`) -> LLM input embeddings at
the image-token positions -> LLM -> text head. Generation: VQ codes -> `gen_embed` (dim 8) ->
MLP (`gen_aligner`) -> LLM -> `gen_head` -> logits over the codebook; finished codes -> VQ
decoder (`gen_vision_model`) -> pixels.

This module is pure tensor math. Tokenisation, image loading, KV caches, sampling and guidance
live in `januspro.processing` and `januspro.generation`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from januspro.config import JanusConfig
from januspro.models.aligner import MlpAligner
from januspro.models.gen_head import GenerationHead
from januspro.models.llama import KVBuffers, LlamaForCausalLM
from januspro.models.siglip import VisionTower
from januspro.models.vq import VQModel


class JanusModel(nn.Module):
    """All Janus weights, under the official checkpoint's parameter names."""

    def __init__(self, config: JanusConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_model = VisionTower(config.vision)
        self.aligner = MlpAligner(config.aligner)
        self.gen_vision_model = VQModel(config.gen_vision)
        self.gen_aligner = MlpAligner(config.gen_aligner)
        self.gen_head = GenerationHead(config.gen_head)
        self.gen_embed = nn.Embedding(config.gen_vision.codebook_size, config.gen_vision.codebook_embed_dim)
        self.language_model = LlamaForCausalLM(config.language)

    # ---------------------------------------------------------------- understanding

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """[M, 3, H, W] normalised pixels -> [M, num_image_tokens, hidden] LLM input embeddings."""
        features = self.vision_model(pixels)
        return self.aligner(features.to(self.gen_embed.weight.dtype))

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] token ids -> [B, T, hidden]"""
        return self.language_model.model.embed_tokens(input_ids)

    def embed_prompt(
        self, input_ids: torch.Tensor, image_mask: torch.Tensor, image_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        """Token embeddings with the image-token positions replaced by image features.

        input_ids: [B, T]; image_mask: [B, T] bool, True at image-token positions;
        image_embeds: [M, N, hidden] for the M images in order of appearance (row-major over
        the batch), with M * N == image_mask.sum().
        """
        embeds = self.embed_tokens(input_ids)
        if image_embeds is None or image_embeds.numel() == 0:
            return embeds
        flat = image_embeds.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        return embeds.masked_scatter(image_mask[..., None], flat)

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> [..., vocab]"""
        return self.language_model.lm_head(hidden)

    # ---------------------------------------------------------------- generation

    def embed_image_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[...] VQ code indices -> [..., hidden] LLM input embeddings."""
        return self.gen_aligner(self.gen_embed(codes))

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> [..., codebook_size]"""
        return self.gen_head(hidden)

    def decode_image_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, num_gen_tokens] codes -> [B, 3, H, W] pixels roughly in [-1, 1]."""
        return self.gen_vision_model.decode_codes(codes)

    # ---------------------------------------------------------------- shared LLM

    def hidden_states(
        self,
        inputs_embeds: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        kv_cache: KVBuffers | None = None,
        cache_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the LLM: [B, T, hidden] embeddings -> [B, T, hidden] final hidden states."""
        return self.language_model.model(inputs_embeds, positions, mask, kv_cache, cache_pos)

    # ---------------------------------------------------------------- training helpers

    @torch.no_grad()
    def initialize_weights(self, std: float = 0.02) -> None:
        """Fresh weights for training from scratch: N(0, std) for linear and embedding weights
        (scaled down for residual output projections), zero biases, unit norms, l2-normalised
        uniform codebook."""
        num_layers = max(1, self.config.language.num_hidden_layers)
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                scale = std
                if name.endswith(("o_proj", "down_proj")):
                    scale = std / math.sqrt(2 * num_layers)
                nn.init.normal_(module.weight, std=scale)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
            elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif hasattr(module, "weight") and isinstance(module.weight, nn.Parameter) and module.weight.dim() == 1:
                nn.init.ones_(module.weight)  # RMSNorm
        # Convolutions of the VQ model: Kaiming-like default init trains better than N(0, 0.02).
        for module in self.gen_vision_model.modules():
            if isinstance(module, nn.Conv2d):
                module.reset_parameters()
        tower = self.vision_model.vision_tower
        nn.init.normal_(tower.pos_embed, std=std)
        tower.patch_embed.proj.reset_parameters()
        if tower.attn_pool is not None:
            nn.init.normal_(tower.attn_pool.latent, std=tower.config.width**-0.5)
        codebook = self.gen_vision_model.quantize.embedding.weight
        codebook.uniform_(-1.0, 1.0)
        if self.config.gen_vision.codebook_l2_norm:
            codebook.copy_(nn.functional.normalize(codebook, dim=-1))

    def num_parameters(self) -> int:
        """Elements of `parameters()` (on a model prepared for CPU inference, packed linear
        weights live outside them: count with `packed_linear.parameter_count`)."""
        return sum(p.numel() for p in self.parameters())
