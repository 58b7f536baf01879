"""The training objective of the three stages.

Next-token cross entropy on text through the text head and on VQ codes through the generation
head, over one causal forward of the shared LLM. The module returns loss SUMS and the caller
divides by the token counts of the whole optimizer step (all micro-batches, all processes), so
that gradient accumulation and data parallelism give exactly the gradient of one big batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from januspro.models.janus import JanusModel
from januspro.training.data import IGNORE, Batch


class JanusObjective(nn.Module):
    """Wraps the model so that DDP/FSDP see one module whose forward computes the losses."""

    def __init__(self, model: JanusModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (sum of text-token losses, sum of image-code losses)"""
        model = self.model
        unused: list[nn.Module] = []  # modules this batch does not need
        embeds = model.embed_tokens(batch.ids)  # [B, T, D]
        if batch.pixels.shape[0]:
            features = model.encode_images(batch.pixels)  # [M, N, D]
            embeds = embeds.masked_scatter(batch.image_mask[..., None], features.reshape(-1, embeds.shape[-1]).to(embeds.dtype))
        else:
            unused += [model.vision_model, model.aligner]
        if batch.code_inputs.numel():
            codes = model.embed_image_codes(batch.code_inputs)  # [K, D]
            embeds = embeds.masked_scatter(batch.code_mask[..., None], codes.to(embeds.dtype))
        else:
            unused += [model.gen_embed, model.gen_aligner]
        b, t = batch.ids.shape
        positions = torch.arange(t, device=batch.ids.device).expand(b, t)
        hidden = model.hidden_states(embeds, positions)  # [B, T, D], causal
        text = batch.text_labels != IGNORE
        image = batch.image_labels != IGNORE
        text_sum = hidden.new_zeros((), dtype=torch.float32)
        if text.any():
            logits = model.text_logits(hidden[text]).float()
            text_sum = F.cross_entropy(logits, batch.text_labels[text], reduction="sum")
        else:
            unused.append(model.language_model.lm_head)
        image_sum = hidden.new_zeros((), dtype=torch.float32)
        if image.any():
            logits = model.image_logits(hidden[image]).float()
            image_sum = F.cross_entropy(logits, batch.image_labels[image], reduction="sum")
        else:
            unused.append(model.gen_head)
        # Zero-weighted use of the skipped modules: every trainable parameter gets a gradient
        # on every process, so data-parallel collectives always match.
        text_sum = text_sum + _touch(unused)
        return text_sum, image_sum


def _touch(modules: list[nn.Module]) -> torch.Tensor | float:
    total: torch.Tensor | float = 0.0
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                total = total + param.sum() * 0.0
    return total
