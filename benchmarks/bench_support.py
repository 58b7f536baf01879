"""Support code of the generation benchmark (`bench_generation.py`): models, measuring, report.

Models: the real Janus-Pro configs, transformers' Janus with random weights built from them,
and this engine's model holding the very same tensors. The official `config.json` files of
Janus-Pro-1B and -7B live in the shared reference folder (`../shared/reference/` next to the
repository); their sizes are also written out below so that the benchmark runs on a machine
without that folder, and where the folder exists the two are checked to agree. A reduced-depth
variant keeps every width, the vocabulary, the codebook and the whole VQ model and only drops
LLM (and SigLIP) layers, so that CPU runs stay short while per-layer costs, the heads and the
VQ decoder are those of the real model.

Measuring: synchronised wall-clock timing, per-case peak memory, result rows, speed-ups, the
issue's targets, and the printed table.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import JanusConfig as HFJanusConfig
from transformers import JanusForConditionalGeneration, JanusVisionConfig, JanusVQVAEConfig, LlamaConfig

from januspro import keymap
from januspro.config import AlignerConfig, GenHeadConfig, JanusConfig, LanguageConfig
from januspro.models.janus import JanusModel
from januspro.testing import tiny_config

BASELINES = ("transformers", "original-loop")  # ratio columns: januspro's speed-up over these


# ---------------------------------------------------------------------------- models


REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIRS = (REPO.parent / "shared" / "reference", REPO / "shared" / "reference")


def _official(hidden: int, language: LanguageConfig) -> JanusConfig:
    return JanusConfig(
        aligner=AlignerConfig(input_dim=1024, n_embed=hidden),
        gen_aligner=AlignerConfig(input_dim=8, n_embed=hidden),
        gen_head=GenHeadConfig(n_embed=hidden, image_token_embed=hidden, image_token_size=16384),
        language=language,
    )


# What the official config.json files say (7B: LlamaConfig defaults for the unset LLM sizes).
BUILTIN_CONFIGS: dict[str, JanusConfig] = {
    "1b": _official(2048, LanguageConfig(vocab_size=102400, hidden_size=2048, intermediate_size=5632,
                                         num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16,
                                         max_position_embeddings=16384)),
    "7b": _official(4096, LanguageConfig(vocab_size=102400, num_hidden_layers=30, max_position_embeddings=16384)),
    # A few-million-parameter model of the same architecture (smoke tests). The generation grid
    # equals the understanding patch grid, as transformers' Janus assumes.
    "tiny": tiny_config(vocab=512, gen_image_size=16),
}


@dataclass(frozen=True)
class TokenIds:
    """Special token ids. Weights are random, so only their being distinct matters; they sit at
    the top of the vocabulary and prompts draw their text from below them."""

    bos: int
    eos: int
    pad: int
    image: int
    boi: int
    eoi: int

    @classmethod
    def for_vocab(cls, vocab: int) -> "TokenIds":
        return cls(*(vocab - 1 - i for i in range(6)))

    @property
    def lowest(self) -> int:
        return min(self.bos, self.eos, self.pad, self.image, self.boi, self.eoi)


def reference_config(name: str) -> tuple[JanusConfig, str]:
    """The named config and where it came from; the reference file wins where it exists."""
    builtin = BUILTIN_CONFIGS[name]
    if name == "tiny":
        return builtin, "januspro.testing.tiny_config (smoke test size)"
    for folder in REFERENCE_DIRS:
        path = folder / f"janus-pro-{name}.config.json"
        if path.is_file():
            config = JanusConfig.from_file(path)
            agrees = config == builtin
            return config, f"{path}" + ("" if agrees else " (differs from the built-in copy!)")
    return builtin, "built-in copy of the official config.json (reference folder not found)"


def hf_config(config: JanusConfig, ids: TokenIds, layers: int | None = None, vision_layers: int | None = None) -> HFJanusConfig:
    """transformers' JanusConfig for the same architecture, optionally with fewer layers."""
    lang, vis, vq = config.language, config.vision, config.gen_vision
    if vis.image_size // vis.patch_size != vq.grid_size:
        raise ValueError("transformers' Janus needs the generation grid to equal the vision patch grid")
    text = LlamaConfig(
        vocab_size=lang.vocab_size, hidden_size=lang.hidden_size, intermediate_size=lang.intermediate_size,
        num_hidden_layers=layers or lang.num_hidden_layers, num_attention_heads=lang.num_attention_heads,
        num_key_value_heads=lang.kv_heads, head_dim=lang.dim_per_head, max_position_embeddings=lang.max_position_embeddings,
        rms_norm_eps=lang.rms_norm_eps, rope_theta=lang.rope_theta, tie_word_embeddings=False,
        bos_token_id=ids.bos, eos_token_id=ids.eos, pad_token_id=ids.pad,
    )
    vision = JanusVisionConfig(
        hidden_size=vis.width, num_hidden_layers=vision_layers or vis.num_built_layers, num_attention_heads=vis.heads,
        image_size=vis.image_size, patch_size=vis.patch_size, mlp_ratio=vis.mlp_ratio, layer_norm_eps=vis.layer_norm_eps,
        projection_dim=config.aligner.n_embed, depth=config.aligner.depth, num_image_tokens=vq.num_image_tokens,
    )
    vq_config = JanusVQVAEConfig(
        embed_dim=vq.codebook_embed_dim, num_embeddings=vq.codebook_size, base_channels=vq.ch,
        channel_multiplier=list(vq.ch_mult), num_res_blocks=vq.num_res_blocks, latent_channels=vq.z_channels,
        projection_dim=config.gen_aligner.n_embed, num_hidden_layers=config.gen_aligner.depth,
        image_token_embed_dim=config.gen_head.n_embed,
    )
    return HFJanusConfig(text_config=text, vision_config=vision, vq_config=vq_config, image_token_id=ids.image,
                         tie_word_embeddings=False)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def full_size_parameters(reference: JanusConfig, ids: TokenIds) -> tuple[int, int]:
    """(parameters of this engine's model of `reference`, incl. the unused attention-pool head
    the official checkpoints carry; parameters of the full-depth transformers model).

    Both models are built on the meta device (no memory). Raises if this engine's model of the
    reference config, less the attention-pool head transformers drops, differs in size from the
    transformers model built from the converted config: the benchmark would then not be
    measuring the real configs' shapes."""
    with torch.device("meta"):
        ours = _count(JanusModel(reference))
        ours_no_pool = _count(JanusModel(replace(reference, vision=replace(reference.vision, attn_pool=False))))
        theirs = _count(JanusForConditionalGeneration(hf_config(reference, ids)))
    if ours_no_pool != theirs:
        raise RuntimeError(f"config mismatch: januspro model has {ours_no_pool:,} parameters, transformers' {theirs:,}")
    return ours, theirs


@dataclass
class ModelPair:
    hf: JanusForConditionalGeneration
    model: JanusModel
    ids: TokenIds
    reference: JanusConfig
    source: str
    layers: int
    vision_layers: int
    params: int  # of the benchmarked (possibly reduced) model
    params_reference: int  # of the full reference model (as in the official checkpoint)


def build_pair(name: str, layers: int | None, vision_layers: int | None, device: torch.device,
               dtype: torch.dtype, seed: int = 0) -> ModelPair:
    """transformers' Janus with random weights on `device`, and this engine's model sharing its
    tensors (loaded strictly through the transformers key map with `assign=True`)."""
    reference, source = reference_config(name)
    ids = TokenIds.for_vocab(reference.language.vocab_size)
    params_reference, _ = full_size_parameters(reference, ids)
    full_layers, full_vision = reference.language.num_hidden_layers, reference.vision.num_built_layers
    layers = min(layers or full_layers, full_layers)
    if vision_layers is None:  # proportional to the LLM's reduction, at least one
        vision_layers = max(1, round(full_vision * layers / full_layers))
    vision_layers = min(vision_layers, full_vision)

    torch.manual_seed(seed)
    with torch.device(device):
        hf = JanusForConditionalGeneration._from_config(hf_config(reference, ids, layers, vision_layers), dtype=dtype)
    hf = hf.to(device=device, dtype=dtype).eval()
    hf.generation_config.pad_token_id = ids.pad
    hf.generation_config.bos_token_id = ids.bos
    hf.generation_config.eos_token_id = ids.eos
    hf.generation_config.generation_kwargs = {"boi_token_id": ids.boi}

    ours_config = JanusConfig.from_dict(hf.config.to_dict())
    with torch.device("meta"):
        model = JanusModel(ours_config)
    model.load_state_dict(dict(keymap.from_transformers(hf.state_dict().items())), strict=True, assign=True)
    model.eval()
    if _count(model) != _count(hf):
        raise RuntimeError("januspro and transformers models differ in size")
    return ModelPair(hf, model, ids, reference, source, layers, vision_layers, _count(model), params_reference)


def reshare_fused_weights(pair: ModelPair) -> int:
    """After `prepare_for_inference` fused this engine's q/k/v and gate/up weights into new
    tensors, point transformers' projections at the same (view) tensors again, so that the two
    models still hold one copy of the LLM; returns how many projections were re-shared."""
    shared = 0
    for ours, theirs in zip(pair.model.language_model.model.layers, pair.hf.model.language_model.layers):
        groups = ((ours.self_attn, theirs.self_attn, ours.self_attn.qkv_weight, ("q_proj", "k_proj", "v_proj")),
                  (ours.mlp, theirs.mlp, ours.mlp.gate_up_weight, ("gate_proj", "up_proj")))
        for mine, other, fused, names in groups:
            if fused is None:
                continue
            for name in names:
                getattr(other, name).weight = getattr(mine, name).weight
                getattr(other, name).bias = getattr(mine, name).bias
                shared += 1
    return shared


@dataclass(frozen=True)
class _FewerGenTokens(JanusConfig):
    """A JanusConfig whose models generate `gen_tokens` codes per image (quick CPU runs)."""

    gen_tokens: int = 0

    @property
    def num_gen_tokens(self) -> int:
        return self.gen_tokens


def with_gen_tokens(config: JanusConfig, tokens: int) -> JanusConfig:
    if tokens == config.num_gen_tokens:
        return config
    values = {f.name: getattr(config, f.name) for f in fields(JanusConfig)}
    return _FewerGenTokens(**values, gen_tokens=tokens)


def full_grid(codes: torch.Tensor, tokens_per_image: int) -> torch.Tensor:
    """Tile [N, T] codes to [N, tokens_per_image] so that the VQ decoder always decodes a full
    image, whatever number of codes a quick run sampled."""
    if codes.shape[1] >= tokens_per_image:
        return codes
    repeats = -(-tokens_per_image // codes.shape[1])
    return codes.repeat(1, repeats)[:, :tokens_per_image]


# ---------------------------------------------------------------------------- measuring


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    sync(device)
    return time.perf_counter()


class PeakMemory:
    """Peak memory of the code between `start` and `stop`: CUDA max allocated, or the process's
    peak RSS on Linux (VmHWM after resetting it through /proc/self/clear_refs); None if the
    platform offers neither. `extra` is the peak above what was in use at `start`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base: int | None = None

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back so RSS means "in use"
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = self._status("VmRSS")
        except OSError:
            self.base = None

    def stop(self) -> tuple[int | None, int | None]:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = self._status("VmHWM") if self.base is not None else None
        if peak is None or self.base is None:
            return None, None
        return peak, max(0, peak - self.base)


@dataclass
class Row:
    task: str  # "image", "understand-ttft", "understand-decode", "bundled"
    size: str  # "N=4" images or "B=8" rows
    engine: str
    seconds: float | None  # median over the repeats (None: not run)
    rate: float | None  # images/s or tokens/s over all rows together (None: not applicable)
    unit: str
    peak_bytes: int | None
    extra_bytes: int | None
    note: str = ""
    speedup: dict[str, float] = field(default_factory=dict)  # baseline engine -> its seconds / ours


def repeat_run(fn: Callable[[], Any], device: torch.device, warmup: int, repeat: int,
               on_warmup: Callable[[float], None] | None = None) -> tuple[list[float], list[Any], tuple]:
    """Warm up, then time `repeat` calls; returns (seconds per call, results, (peak, extra)
    memory in bytes over the timed calls). `on_warmup` gets each warm-up call's seconds (what
    compiling costs, for the compiled variants)."""
    for _ in range(warmup):
        start = clock(device)
        fn()
        if on_warmup is not None:
            on_warmup(clock(device) - start)
    memory = PeakMemory(device)
    memory.start()
    times, results = [], []
    for _ in range(repeat):
        start = clock(device)
        results.append(fn())
        times.append(clock(device) - start)
    return times, results, memory.stop()


def add_speedups(rows: list[Row]) -> None:
    """januspro rows get baseline seconds / januspro seconds for each baseline in the same case."""
    for row in rows:
        if not row.engine.startswith("januspro"):
            continue
        for other in rows:
            same_case = (other.task, other.size) == (row.task, row.size)
            if other.engine in BASELINES and same_case and row.seconds and other.seconds:
                row.speedup[other.engine] = other.seconds / row.seconds


def targets(header: dict[str, Any], rows: list[Row]) -> list[dict[str, Any]]:
    """The issue's targets that this run's settings can speak to, with pass/fail."""
    def find(task: str, size: str, engine: str = "januspro") -> Row | None:
        key = (task, size, engine)
        return next((r for r in rows if (r.task, r.size, r.engine) == key and r.seconds is not None), None)

    out: list[dict[str, Any]] = []

    def check(name: str, value: float | None, goal: str, ok: bool | None) -> None:
        out.append({"target": name, "measured": value, "goal": goal, "ok": ok})

    full = header["layers"] == header["layers_full"] and header["tokens_per_image"] == header["tokens_full"]
    cuda, config = header["device_type"] == "cuda", header["config"]
    if cuda and full and config in ("1b", "7b"):
        limit = 1.5 if config == "1b" else 4.5
        if row := find("image", "N=16"):
            check(f"{config} GPU: 16 images end to end (s)", row.seconds, f"<= {limit}", row.seconds <= limit)
            if config == "1b" and "transformers" in row.speedup:
                value = row.speedup["transformers"]
                check("1b GPU: 16 images, speed-up over transformers", value, ">= 10", value >= 10)
        if row := find("image", "N=16", "januspro-budget"):
            ok = "OVER" not in row.note and "DIFFER" not in row.note
            peak_gb = None if row.peak_bytes is None else row.peak_bytes / 2**30
            check(f"{config} GPU: 16 images in a {header['memory_budget_gb']:g} GB budget (peak GB)", peak_gb,
                  "peak within budget, codes = unchunked", ok)
        if row := find("understand-decode", "B=1"):
            goal = 400 if config == "1b" else 150
            check(f"{config} GPU: understanding decode at batch 1 (tok/s)", row.rate, f">= {goal}", row.rate >= goal)
    if not cuda and config == "1b":
        for row in rows:
            if row.task == "image" and row.engine == "januspro" and "transformers" in row.speedup:
                value = row.speedup["transformers"]
                check(f"CPU reduced-depth 1B: {row.size} images, speed-up over transformers", value, ">= 1.5", value >= 1.5)
    bundled = header["bundled_model"] == "auto"
    if not cuda and bundled and (row := find("bundled", "N=4")) and row.seconds is not None:
        check("CPU: bundled model, 4 images (s)", row.seconds, "< 2", row.seconds < 2)
    if not cuda and bundled:  # and at its defaults, where it ranks its own samples
        for row in rows:
            if row.task == "bundled" and row.engine == "januspro" and "best of" in row.size and row.seconds is not None:
                check(f"CPU: bundled model, 4 images, {row.size.removeprefix('N=4, ')} (s)", row.seconds, "< 2",
                      row.seconds < 2)
    return out


def failed_row(task: str, size: str, engine: str, exc: BaseException, device: torch.device) -> Row:
    """A case that raised (out of memory, a broken variant): reported, and the run goes on."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    return Row(task, size, engine, None, None, "", None, None, "FAILED " + message[:160])


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


def format_table(result: dict[str, Any]) -> str:
    h = result["header"]
    lines = [
        f"januspro generation benchmark  {h['date']}",
        f"device: {h['device']}  dtype: {h['dtype']}  torch {h['torch']}  transformers {h['transformers']}  threads {h['threads']}",
        f"config: {h['config']} ({h['config_source']})",
        f"model: LLM {h['layers']}/{h['layers_full']} layers, SigLIP {h['vision_layers']}/{h['vision_layers_full']} layers, "
        f"all widths, vocab, codebook and VQ full; {h['params'] / 1e6:,.1f}M params "
        f"(full model: {h['params_full'] / 1e6:,.1f}M)",
        f"image tokens per image: {h['tokens_per_image']}"
        + ("" if h["tokens_per_image"] == h["tokens_full"] else
           f" (REDUCED from {h['tokens_full']}: codes tiled to a full grid for the VQ decode)")
        + f"; cfg {h['cfg_weight']:g}, temperature 1",
        f"understanding: prompt {h['und_prompt_tokens']} tokens incl. one {h['image_size']} px image, "
        f"{h['new_tokens']} decode tokens after the first, greedy; generation prompt {h['gen_prompt_tokens']} tokens",
        f"timing: median of {_runs(h['repeat'])} after {h['warmup']} warm-up"
        + ("" if (h["baseline_repeat"], h["baseline_warmup"]) == (h["repeat"], h["warmup"]) else
           f" (baselines: {_runs(h['baseline_repeat'])} after {h['baseline_warmup']})")
        + f"; memory: {h['memory_kind']}",
        "",
    ]
    header = ["task", "size", "engine", "seconds", "rate", "peak MiB", "+MiB"] + [f"x {b}" for b in BASELINES] + ["note"]
    table = [header]
    for r in result["rows"]:
        rate = "" if r["rate"] is None else f"{r['rate']:,.2f} {r['unit']}"
        seconds = "n/a" if r["seconds"] is None else f"{r['seconds']:.3f}"
        ratios = [f"{r['speedup'][b]:.2f}x" if b in r["speedup"] else "" for b in BASELINES]
        table.append([r["task"], r["size"], r["engine"], seconds, rate, _mib(r["peak_bytes"]), _mib(r["extra_bytes"]),
                      *ratios, r["note"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if result["targets"]:
        lines += ["", "targets:"]
        for t in result["targets"]:
            value = t["measured"]
            shown = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else f"{value:,}")
            lines.append(f"  [{'PASS' if t['ok'] else 'FAIL'}] {t['target']}: {shown} (goal {t['goal']})")
    return "\n".join(lines)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"cpu ({model or platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
