"""Training configuration: what a stage trains, on which data mix, for how long, how fast.

Stages follow Janus-Pro:
1. `stage1` adapts the new modules: the understanding aligner, the generation embedding and
   aligner and the generation head train; the LLM and both visual encoders are frozen.
2. `stage2` (unified pre-training) also trains the LLM on a mix of text, understanding and
   text-to-image data.
3. `stage3` (supervised fine-tuning) also trains the understanding encoder; the VQ tokenizer
   stays frozen; data ratio 5:1:4 understanding : text : text-to-image by default.

A stage is data, not code: `StageConfig` can be written to / read from JSON, and a run is a
list of stages (`TrainConfig`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from januspro.errors import InputError

# Module groups a stage can train (names of JanusModel attributes). The VQ tokenizer
# (`gen_vision_model`) is never trained by a stage: it has its own trainer.
GROUPS = ("vision_model", "aligner", "gen_embed", "gen_aligner", "gen_head", "language_model")


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters on the LLM's linear layers (the LLM's own weights then stay frozen)."""

    rank: int = 16
    alpha: float = 32.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class StageConfig:
    name: str
    trainable: tuple[str, ...]
    mix: dict[str, float]  # share of each data kind: understanding, text, t2i
    steps: int = 1000
    batch_size: int = 32  # sequences per optimizer step, over all processes
    grad_accum: int = 1  # micro-batches per step and process
    lr: float = 1e-3
    lr_overrides: dict[str, float] = field(default_factory=dict)  # per group, e.g. {"vision_model": 1e-4}
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    uncond_prob: float = 0.1  # share of t2i samples whose caption becomes the pad-only prompt
    mask_prompt: bool = True  # learn answers only in understanding data
    text_loss_weight: float = 1.0
    image_loss_weight: float = 1.0
    ema_decay: float = 0.0  # > 0: the stage ends on an exponential moving average of its weights (training/ema.py)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.trainable) - set(GROUPS)
        if unknown:
            raise InputError(f"stage {self.name}: unknown trainable groups {sorted(unknown)} (choose from {', '.join(GROUPS)})")
        bad_kinds = set(self.mix) - {"understanding", "text", "t2i"}
        if bad_kinds:
            raise InputError(f"stage {self.name}: unknown data kinds {sorted(bad_kinds)} in mix")
        if not any(v > 0 for v in self.mix.values()):
            raise InputError(f"stage {self.name}: the mix gives no data")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise InputError(f"stage {self.name}: steps, batch_size and grad_accum must be >= 1")
        if not self.lr > 0:
            raise InputError(f"stage {self.name}: lr must be > 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"stage {self.name}: ema_decay must be in [0, 1) (0: off), got {self.ema_decay}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StageConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"unknown stage fields {sorted(unknown)}")
        data = dict(data)
        for key in ("trainable", "betas"):
            if key in data:
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"stage config: {exc}") from None


def preset_stage(name: str, **changes: Any) -> StageConfig:
    """The paper's stages with defaults; `changes` override fields."""
    presets = {
        "stage1": StageConfig("stage1", ("aligner", "gen_embed", "gen_aligner", "gen_head"),
                              {"understanding": 1.0, "t2i": 1.0}, lr=1e-3),
        "stage2": StageConfig("stage2", ("aligner", "gen_embed", "gen_aligner", "gen_head", "language_model"),
                              {"understanding": 3.0, "text": 1.0, "t2i": 6.0}, lr=5e-4),
        "stage3": StageConfig("stage3", GROUPS, {"understanding": 5.0, "text": 1.0, "t2i": 4.0}, lr=2e-4,
                              lr_overrides={"vision_model": 1e-4}),
    }
    if name not in presets:
        raise InputError(f"unknown stage {name!r} (choose from {', '.join(presets)})")
    return replace(presets[name], **changes)


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...]
    out: str
    stages: tuple[StageConfig, ...]
    init: str | None = None  # checkpoint to start from (None: the model must be given in code)
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere; or fp32/bf16/fp16
    device: str | None = None
    log_every: int = 10
    save_every: int = 0  # 0: only at the end of each stage
    strategy: str = "ddp"  # with torchrun: ddp or fsdp
    gradient_checkpointing: bool = False
    lora: LoraConfig | None = None
    strict_data: bool = False
    system_prompt: str | None = None  # None: the processor's

    def __post_init__(self) -> None:
        if self.strategy not in ("ddp", "fsdp"):
            raise InputError(f"strategy must be ddp or fsdp, got {self.strategy!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise InputError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if not self.stages:
            raise InputError("a training run needs at least one stage")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        try:
            data["stages"] = tuple(
                preset_stage(s.pop("preset"), **s) if isinstance(s, dict) and "preset" in s else StageConfig.from_dict(s)
                for s in (dict(x) for x in data.get("stages", []))
            )
            data["data"] = tuple(data.get("data", ()))
            if data.get("lora") is not None:
                lora = dict(data["lora"])
                if "targets" in lora:
                    lora["targets"] = tuple(lora["targets"])
                data["lora"] = LoraConfig(**lora)
            names = {f.name for f in fields(cls)}
            unknown = set(data) - names
            if unknown:
                raise InputError(f"unknown training config fields {sorted(unknown)}")
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"training config: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError(f"training config {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
