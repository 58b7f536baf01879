"""Typed configuration of a Janus model.

The official checkpoints describe the model in a `config.json` written for DeepSeek's
`MultiModalityConfig`: five sub-configs of the form ``{"cls": ..., "params": {...}}`` and a
`language_config` that is a (possibly partial) transformers `LlamaConfig`. Sizes are mostly
implied: ``siglip_large_patch16_384`` names a ViT, ``VQ-16`` names LlamaGen's tokenizer, and
the 7B file leaves the LLM sizes to LlamaConfig's defaults.

These dataclasses make every size explicit. `JanusConfig.from_dict` reads the official format
(and the format of transformers' converted checkpoints, ``model_type == "janus"``);
`JanusConfig.to_dict` writes the official format back, adding explicit size fields only where
they differ from what the named preset implies, so an official file round-trips unchanged and a
small model (the bundled one, tests) is described in the same format.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from januspro.errors import ConfigError

# SigLIP presets named by `vision_config.params.model_name` in the official configs.
SIGLIP_PRESETS: dict[str, dict[str, Any]] = {
    "siglip_large_patch16_384": dict(patch_size=16, width=1024, layers=24, heads=16, mlp_ratio=4.0),
    "siglip_so400m_patch14_384": dict(patch_size=14, width=1152, layers=27, heads=16, mlp_ratio=3.7362),
    "siglip_so400m_patch14_224": dict(patch_size=14, width=1152, layers=27, heads=16, mlp_ratio=3.7362),
}

# LlamaGen VQ presets named by `gen_vision_config.cls`.
VQ_PRESETS: dict[str, dict[str, Any]] = {
    "VQ-16": dict(ch_mult=(1, 1, 2, 2, 4)),
    "VQ-8": dict(ch_mult=(1, 2, 2, 4)),
}


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP ViT of the understanding pathway (timm layout, no class token)."""

    model_name: str = "siglip_large_patch16_384"
    image_size: int = 384
    patch_size: int = 16
    width: int = 1024
    layers: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0
    select_layer: int = -1  # -1: output of the last block (after the final norm), as Janus uses
    attn_pool: bool = True  # the checkpoint carries an attention-pool head (loaded, never used)
    layer_norm_eps: float = 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_built_layers(self) -> int:
        """Blocks the model holds: the original builds only those up to `select_layer`."""
        if self.select_layer <= 0:
            return min(self.layers, self.layers + self.select_layer + 1)
        return min(self.layers, self.select_layer)

    @property
    def mlp_hidden(self) -> int:
        return int(self.width * self.mlp_ratio)


@dataclass(frozen=True)
class AlignerConfig:
    """MLP (`mlp_gelu`) mapping one feature space onto the LLM's hidden size."""

    input_dim: int = 1024
    n_embed: int = 2048
    depth: int = 2
    projector_type: str = "mlp_gelu"


@dataclass(frozen=True)
class VQConfig:
    """LlamaGen VQ tokenizer of the generation pathway (`VQ-16`)."""

    cls: str = "VQ-16"
    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    codebook_show_usage: bool = True  # the checkpoint carries the `codebook_used` buffer
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    z_channels: int = 256
    num_res_blocks: int = 2
    norm_groups: int = 32
    image_size: int = 384  # size of generated images (pixels)
    # Codes that name a blank (pure white) patch by its grid position, one per image token in raster order, or
    # empty (the official tokenizers). When set, `VQModel.encode` gives every blank patch its position's code
    # and never picks these codes for anything else, so the LLM reads where it is in the image from the codes
    # it has drawn (the shapes-world model; see `januspro.training.components.tag_blank_patches`).
    blank_patch_codes: tuple[int, ...] = ()

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def num_image_tokens(self) -> int:
        return self.grid_size**2


@dataclass(frozen=True)
class GenHeadConfig:
    """Generation head: LLM hidden state -> logits over the VQ codebook."""

    n_embed: int = 2048
    image_token_embed: int = 2048
    image_token_size: int = 16384


@dataclass(frozen=True)
class LanguageConfig:
    """LLaMA decoder. Defaults are transformers' `LlamaConfig` defaults, which the official
    7B config relies on."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None  # None: same as num_attention_heads
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    # Keys of the file we do not interpret (torch_dtype, pad/bos/eos ids, ...), written back.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class JanusConfig:
    """The whole model: both visual pathways and the shared LLM."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    aligner: AlignerConfig = field(default_factory=AlignerConfig)
    gen_vision: VQConfig = field(default_factory=VQConfig)
    gen_aligner: AlignerConfig = field(default_factory=lambda: AlignerConfig(input_dim=8))
    gen_head: GenHeadConfig = field(default_factory=GenHeadConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    # Top-level keys of the file we do not interpret (architectures, torch_dtype, ...), kept
    # so that a saved config says what the loaded one said.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_image_tokens(self) -> int:
        """Image tokens per input image in an understanding prompt (576 for 384 px, patch 16)."""
        return self.vision.num_patches

    @property
    def num_gen_tokens(self) -> int:
        """VQ codes per generated image (576 for the official models)."""
        return self.gen_vision.num_image_tokens

    # ------------------------------------------------------------------ parsing

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JanusConfig":
        """Parse an official (`multi_modality`) or transformers (`janus`) config dict."""
        if not isinstance(data, Mapping):
            raise ConfigError("config.json must hold a JSON object")
        if data.get("model_type") == "janus":
            config = _from_transformers_dict(data)
        elif "language_config" in data:
            config = _from_official_dict(data)
        else:
            raise ConfigError(
                "config.json is neither an official Janus config (no 'language_config') nor a "
                f"transformers Janus config (model_type={data.get('model_type')!r})"
            )
        config.validate()
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> "JanusConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def validate(self) -> None:
        """Reject configurations no model can be built from, with a message naming the field."""
        v, lang = self.vision, self.language
        checks = [
            (v.image_size % v.patch_size == 0, "vision image_size must be a multiple of patch_size"),
            (v.width % v.heads == 0, "vision width must be a multiple of heads"),
            (self.aligner.input_dim == v.width, "aligner input_dim must equal the vision width"),
            (self.aligner.n_embed == lang.hidden_size, "aligner n_embed must equal the LLM hidden_size"),
            (self.gen_aligner.input_dim == self.gen_vision.codebook_embed_dim,
             "gen_aligner input_dim must equal the VQ codebook dim (n_embed)"),
            (self.gen_aligner.n_embed == lang.hidden_size, "gen_aligner n_embed must equal the LLM hidden_size"),
            (self.gen_head.n_embed == lang.hidden_size, "gen_head n_embed must equal the LLM hidden_size"),
            (self.gen_head.image_token_size == self.gen_vision.codebook_size,
             "gen_head image_token_size must equal the VQ codebook size"),
            (lang.num_attention_heads % lang.kv_heads == 0,
             "num_attention_heads must be a multiple of num_key_value_heads"),
            (lang.hidden_act == "silu", f"unsupported LLM hidden_act {lang.hidden_act!r} (only 'silu')"),
            (self.gen_vision.image_size % self.gen_vision.downsample == 0,
             "generated image size must be a multiple of the VQ downsample factor"),
            (all(self.gen_vision.ch * m % self.gen_vision.norm_groups == 0 for m in self.gen_vision.ch_mult),
             "VQ channel counts must be multiples of norm_groups"),
            (_valid_blank_codes(self.gen_vision),
             "VQ blank_patch_codes must be empty or one distinct code per image token, each below codebook_size"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        for name, aligner in (("aligner", self.aligner), ("gen_aligner", self.gen_aligner)):
            if aligner.projector_type != "mlp_gelu" or aligner.depth < 1:
                raise ConfigError(
                    f"{name}: unsupported projector {aligner.projector_type!r} depth {aligner.depth} "
                    "(Janus uses 'mlp_gelu' with depth >= 1)"
                )

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """The official `config.json` layout (what DeepSeek's code and this loader read)."""
        v, vq = self.vision, self.gen_vision
        vision_params: dict[str, Any] = {
            "image_size": v.image_size,
            "model_name": v.model_name,
            "select_feature": "same",
            "select_layer": v.select_layer,
        }
        preset = SIGLIP_PRESETS.get(v.model_name, {})
        for key in ("patch_size", "width", "layers", "heads", "mlp_ratio"):
            if preset.get(key) != getattr(v, key):
                vision_params[key] = getattr(v, key)
        if not v.attn_pool:
            vision_params["attn_pool"] = False
        if v.layer_norm_eps != 1e-6:
            vision_params["layer_norm_eps"] = v.layer_norm_eps

        gen_params: dict[str, Any] = {"image_token_size": vq.codebook_size, "n_embed": vq.codebook_embed_dim}
        defaults = replace(VQConfig(), **VQ_PRESETS.get(vq.cls, {}))
        for key in ("ch", "ch_mult", "z_channels", "num_res_blocks", "norm_groups", "image_size",
                    "codebook_l2_norm", "codebook_show_usage"):
            if getattr(defaults, key) != getattr(vq, key):
                value = getattr(vq, key)
                gen_params[key] = list(value) if isinstance(value, tuple) else value
        if vq.blank_patch_codes:
            gen_params["blank_patch_codes"] = list(vq.blank_patch_codes)

        language = {k: val for k, val in asdict(self.language).items() if val is not None and k != "extra"}
        language.update({k: val for k, val in self.language.extra.items() if k not in language})
        language["model_type"] = "llama"
        out: dict[str, Any] = {
            "aligner_config": _aligner_dict(self.aligner, "aligner"),
            "architectures": ["MultiModalityCausalLM"],
            "gen_aligner_config": _aligner_dict(self.gen_aligner, "gen_aligner"),
            "gen_head_config": {
                "cls": "vision_head",
                "model_type": "gen_head",
                "params": asdict(self.gen_head),
            },
            "gen_vision_config": {"cls": vq.cls, "model_type": "gen_vision", "params": gen_params},
            "language_config": language,
            "model_type": "multi_modality",
            "vision_config": {"cls": "CLIPVisionTower", "model_type": "vision", "params": vision_params},
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return dict(sorted(out.items()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- helpers


def _aligner_dict(aligner: AlignerConfig, model_type: str) -> dict[str, Any]:
    return {
        "cls": "MlpProjector",
        "model_type": model_type,
        "params": {
            "depth": aligner.depth,
            "input_dim": aligner.input_dim,
            "n_embed": aligner.n_embed,
            "projector_type": aligner.projector_type,
        },
    }


def _valid_blank_codes(vq: VQConfig) -> bool:
    codes = vq.blank_patch_codes
    if not codes:
        return True
    return (len(codes) == vq.num_image_tokens and len(set(codes)) == len(codes)
            and all(isinstance(c, int) and 0 <= c < vq.codebook_size for c in codes))


def _take(kind: type, source: Mapping[str, Any], **overrides: Any) -> Any:
    """Build dataclass `kind` from the keys of `source` it knows, then apply `overrides`."""
    names = {f.name for f in fields(kind)}
    kwargs = {k: v for k, v in source.items() if k in names}
    kwargs.update(overrides)
    try:
        return kind(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{kind.__name__}: {exc}") from None


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = data.get(name)
    if not isinstance(section, Mapping):
        raise ConfigError(f"missing or malformed '{name}'")
    params = section.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(f"'{name}.params' must be an object")
    return params


def _language_from(data: Mapping[str, Any]) -> LanguageConfig:
    """LlamaConfig fields, rejecting RoPE variants this decoder does not implement."""
    data = dict(data)
    rope = data.get("rope_parameters") or data.get("rope_scaling")
    if isinstance(rope, Mapping):
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise ConfigError(f"unsupported RoPE scaling {rope_type!r} in the language config")
        if "rope_theta" in rope:
            data["rope_theta"] = rope["rope_theta"]
    elif rope is not None:
        raise ConfigError("malformed rope_scaling in the language config")
    known = {f.name for f in fields(LanguageConfig)}
    kept = {k: v for k, v in data.items() if k in ("torch_dtype", "dtype", "pad_token_id", "bos_token_id", "eos_token_id")}
    return _take(LanguageConfig, {k: v for k, v in data.items() if k in known and k != "extra"}, extra=kept)


def _from_official_dict(data: Mapping[str, Any]) -> JanusConfig:
    vision_params = dict(_section(data, "vision_config"))
    model_name = vision_params.get("model_name", "siglip_large_patch16_384")
    preset = SIGLIP_PRESETS.get(model_name)
    explicit = {"patch_size", "width", "layers", "heads", "mlp_ratio"}
    if preset is None and not explicit <= vision_params.keys():
        raise ConfigError(
            f"unknown vision model_name {model_name!r}: give {sorted(explicit)} explicitly in "
            "vision_config.params or use one of " + ", ".join(SIGLIP_PRESETS)
        )
    vision = _take(VisionConfig, {**(preset or {}), **vision_params}, model_name=model_name)
    if vision_params.get("select_feature", "same") not in ("same", "patch"):
        raise ConfigError(f"unsupported select_feature {vision_params['select_feature']!r}")

    gen_section = data.get("gen_vision_config", {})
    vq_cls = gen_section.get("cls", "VQ-16") if isinstance(gen_section, Mapping) else "VQ-16"
    gen_params = dict(_section(data, "gen_vision_config"))
    if vq_cls not in VQ_PRESETS and "ch_mult" not in gen_params:
        raise ConfigError(f"unknown gen_vision cls {vq_cls!r}: give 'ch_mult' explicitly or use VQ-16")
    vq_source = {**VQ_PRESETS.get(vq_cls, {}), **gen_params}
    for key in ("ch_mult", "blank_patch_codes"):
        if key in vq_source:
            if not isinstance(vq_source[key], (list, tuple)):
                raise ConfigError(f"gen_vision_config.params.{key} must be a list")
            vq_source[key] = tuple(vq_source[key])
    gen_vision = _take(
        VQConfig,
        vq_source,
        cls=vq_cls,
        codebook_size=gen_params.get("image_token_size", 16384),
        codebook_embed_dim=gen_params.get("n_embed", 8),
    )

    language_data = data.get("language_config")
    if not isinstance(language_data, Mapping):
        raise ConfigError("'language_config' must be an object")
    return JanusConfig(
        vision=vision,
        aligner=_take(AlignerConfig, _section(data, "aligner_config")),
        gen_vision=gen_vision,
        gen_aligner=_take(AlignerConfig, _section(data, "gen_aligner_config")),
        gen_head=_take(GenHeadConfig, _section(data, "gen_head_config")),
        language=_language_from(language_data),
        extra={k: v for k, v in data.items() if not k.endswith("_config") and k != "model_type"},
    )


def _from_transformers_dict(data: Mapping[str, Any]) -> JanusConfig:
    """Read the config of transformers' converted checkpoints (`JanusConfig`)."""
    text = data.get("text_config") or {}
    vis = data.get("vision_config") or {}
    vq = data.get("vq_config") or {}
    language = _language_from(text)
    width = vis.get("hidden_size", 1024)
    vision = VisionConfig(
        model_name="siglip_large_patch16_384",
        image_size=vis.get("image_size", 384),
        patch_size=vis.get("patch_size", 16),
        width=width,
        layers=vis.get("num_hidden_layers", 24),
        heads=vis.get("num_attention_heads", 16),
        mlp_ratio=float(vis.get("mlp_ratio", 4.0)),
        attn_pool=False,  # the conversion drops the unused attention-pool head
        layer_norm_eps=vis.get("layer_norm_eps", 1e-6),
    )
    projection = vq.get("projection_dim", 2048)
    ch_mult = tuple(vq.get("channel_multiplier", (1, 1, 2, 2, 4)))
    num_patches = vision.image_size // vision.patch_size
    gen_vision = VQConfig(
        codebook_size=vq.get("num_embeddings", 16384),
        codebook_embed_dim=vq.get("embed_dim", 8),
        codebook_show_usage=False,  # the conversion drops `codebook_used`
        ch=vq.get("base_channels", 128),
        ch_mult=ch_mult,
        z_channels=vq.get("latent_channels", 256),
        num_res_blocks=vq.get("num_res_blocks", 2),
        image_size=num_patches * 2 ** (len(ch_mult) - 1),
    )
    return JanusConfig(
        vision=vision,
        aligner=AlignerConfig(input_dim=width, n_embed=vis.get("projection_dim", 2048), depth=vis.get("depth", 2)),
        gen_vision=gen_vision,
        gen_aligner=AlignerConfig(
            input_dim=gen_vision.codebook_embed_dim, n_embed=projection, depth=vq.get("num_hidden_layers", 2)
        ),
        gen_head=GenHeadConfig(
            n_embed=vq.get("image_token_embed_dim", 2048),
            image_token_embed=projection,
            image_token_size=gen_vision.codebook_size,
        ),
        language=language,
        extra={"source_format": "transformers", "image_token_id": data.get("image_token_id")},
    )
