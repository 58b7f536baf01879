"""Parameter-name maps between checkpoint layouts.

januspro's modules use the official Janus names (`vision_model.vision_tower.blocks.0.attn.qkv`,
`gen_vision_model.encoder.conv_blocks.0.res.0.conv1`, `language_model.model.layers.0...`), so an
official checkpoint loads with the identity map and everything we save is an official-layout
checkpoint.

transformers' converted checkpoints (`models/janus`, e.g. deepseek-community/Janus-Pro-1B) rename
most modules, split the ViT's fused qkv into q/k/v, squeeze the position embedding and drop the
unused attention-pool head and the VQ `codebook_used` buffer. `from_transformers` undoes that,
tensor by tensor, so that a converted checkpoint loads into the same modules.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

import torch

OFFICIAL = "official"
TRANSFORMERS = "transformers"

# (pattern, replacement) applied in order to transformers names; each name matches one rule.
_TRANSFORMERS_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        # understanding encoder
        (r"^model\.vision_model\.embeddings\.patch_embedding\.", "vision_model.vision_tower.patch_embed.proj."),
        (r"^model\.vision_model\.embeddings\.position_embedding\.weight$", "vision_model.vision_tower.pos_embed"),
        (r"^model\.vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection_layer\.", r"vision_model.vision_tower.blocks.\1.attn.proj."),
        (r"^model\.vision_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.", r"vision_model.vision_tower.blocks.\1.attn.\2_proj."),
        (r"^model\.vision_model\.encoder\.layers\.(\d+)\.layer_norm([12])\.", r"vision_model.vision_tower.blocks.\1.norm\2."),
        (r"^model\.vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"vision_model.vision_tower.blocks.\1.mlp."),
        (r"^model\.vision_model\.post_layernorm\.", "vision_model.vision_tower.norm."),
        # aligners: fc1 -> layers.0, hidden_layers.k -> layers.(2k+2)
        (r"^model\.aligner\.fc1\.", "aligner.layers.0."),
        (r"^model\.aligner\.hidden_layers\.(\d+)\.", "aligner.layers.@HIDDEN@\\1."),
        (r"^model\.generation_aligner\.fc1\.", "gen_aligner.layers.0."),
        (r"^model\.generation_aligner\.hidden_layers\.(\d+)\.", "gen_aligner.layers.@HIDDEN@\\1."),
        # generation head and code embedding
        (r"^model\.generation_head\.proj_out\.", "gen_head.output_mlp_projector."),
        (r"^model\.generation_head\.vision_head\.", "gen_head.vision_head."),
        (r"^model\.generation_embeddings\.weight$", "gen_embed.weight"),
        # VQ tokenizer
        (r"^model\.vqmodel\.encoder\.down\.(\d+)\.block\.", r"gen_vision_model.encoder.conv_blocks.\1.res."),
        (r"^model\.vqmodel\.encoder\.down\.(\d+)\.", r"gen_vision_model.encoder.conv_blocks.\1."),
        (r"^model\.vqmodel\.decoder\.up\.(\d+)\.block\.", r"gen_vision_model.decoder.conv_blocks.\1.res."),
        (r"^model\.vqmodel\.decoder\.up\.(\d+)\.", r"gen_vision_model.decoder.conv_blocks.\1."),
        (r"^model\.vqmodel\.(encoder|decoder)\.mid\.block_1\.", r"gen_vision_model.\1.mid.0."),
        (r"^model\.vqmodel\.(encoder|decoder)\.mid\.attn_1\.", r"gen_vision_model.\1.mid.1."),
        (r"^model\.vqmodel\.(encoder|decoder)\.mid\.block_2\.", r"gen_vision_model.\1.mid.2."),
        (r"^model\.vqmodel\.", "gen_vision_model."),
        # language model
        (r"^model\.language_model\.", "language_model.model."),
        (r"^lm_head\.weight$", "language_model.lm_head.weight"),
    ]
]


def layout_of(name: str) -> str | None:
    """The layout one tensor name belongs to, or None if the name does not tell."""
    if name.startswith("model."):
        return TRANSFORMERS
    if name.startswith(("language_model.", "vision_model.", "gen_vision_model.", "aligner.", "gen_")):
        return OFFICIAL
    return None


def detect_layout(names: Iterable[str]) -> str:
    """Which layout a checkpoint's tensor names are in (official when nothing tells)."""
    for name in names:
        layout = layout_of(name)
        if layout is not None:
            return layout
    return OFFICIAL


def transformers_name(name: str) -> str | None:
    """Official name for one transformers tensor name, or None if no rule covers it.

    Vision q/k/v come back as `...attn.q_proj.weight` etc.; `from_transformers` fuses them."""
    for pattern, replacement in _TRANSFORMERS_RULES:
        new, count = pattern.subn(replacement, name)
        if count:
            if "@HIDDEN@" in new:
                new = re.sub(r"@HIDDEN@(\d+)", lambda m: str(2 * int(m.group(1)) + 2), new)
            return new
    return None


def from_transformers(tensors: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
    """Rename a stream of transformers-layout tensors to official names, fusing the ViT's
    q/k/v projections into `qkv` and restoring the position embedding's leading batch axis.
    Names no rule covers pass through unchanged (the strict loader reports them)."""
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors:
        new = transformers_name(name)
        if new is None:
            yield name, tensor
            continue
        match = re.match(r"^(vision_model\.vision_tower\.blocks\.\d+\.attn\.)([qkv])_proj\.(weight|bias)$", new)
        if match:
            prefix, part, kind = match.groups()
            group = pending.setdefault(prefix + "qkv." + kind, {})
            group[part] = tensor
            if len(group) == 3:
                del pending[prefix + "qkv." + kind]
                yield prefix + "qkv." + kind, torch.cat([group["q"], group["k"], group["v"]], dim=0)
            continue
        if new == "vision_model.vision_tower.pos_embed" and tensor.dim() == 2:
            tensor = tensor.unsqueeze(0)
        yield new, tensor
    for name, group in pending.items():
        # An incomplete q/k/v triple: surface the parts so the loader names them.
        for part, tensor in group.items():
            yield name.replace("qkv.", f"{part}_proj."), tensor
