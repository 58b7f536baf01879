"""Generation benchmark: januspro against transformers' Janus on the same random weights.

Measures, in one run and on one set of weights shaped like Janus-Pro-1B or -7B (optionally
with fewer layers):
  * image generation end to end (prefill, all decode steps with classifier-free guidance, VQ
    decode to 384 px pixels on the host) for N images of one prompt;
  * understanding with one 384 px image per row: time to first token (image encoding, prefill,
    first token) and greedy decode tokens/s, at batch 1 and 8;
  * peak memory of each case (CUDA: max allocated; CPU: peak RSS of the process);
  * optionally the bundled small model making 4 images through the public `Janus` API.

Engines ("variants") are plain functions in IMAGE_ENGINES / TEXT_ENGINES; a new mode of this
engine is one more entry (e.g. `functools.partial(januspro_images, cuda_graph=True)`), and
`--engine-kwargs NAME=JSON` passes keywords through to an engine from the command line.

    python benchmarks/bench_generation.py                      # CPU: 1B widths, 2 layers
    python benchmarks/bench_generation.py --config 7b --json   # GPU: full 7B
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import functools
import gc
import json
import os
import statistics
import sys
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import (  # noqa: E402
    BASELINES, ModelPair, Row, add_speedups, build_pair, clock, device_name, failed_row, format_table, full_grid,
    repeat_run, reshare_fused_weights, targets, with_gen_tokens,
)

import transformers  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402

import januspro  # noqa: E402
from januspro.engine import prepare_for_inference, quantize_model, undo_inference_layout  # noqa: E402
from januspro.generation.image import budget_left, decode_images, generate_image_codes, plan_chunks  # noqa: E402
from januspro.generation.sampling import SamplingParams  # noqa: E402
from januspro.generation.text import TextDecoder, decode_tokens  # noqa: E402
from januspro.packed_linear import parameter_count  # noqa: E402

CFG_WEIGHT = 5.0


# ---------------------------------------------------------------------------- what engines see


@dataclass
class Bench:
    """Everything an engine function needs for one run."""

    pair: ModelPair
    device: torch.device
    tokens: int  # codes sampled per image (576 = the real count)
    gen_prompt: list[int]
    und_prompt: list[int]
    new_tokens: int  # understanding: tokens decoded after the first
    seed: int = 0
    memory_budget_gb: float | None = None
    engine_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_tokens(self) -> int:
        return self.pair.reference.num_gen_tokens

    def pixels(self, batch: int) -> torch.Tensor:
        size = self.pair.model.config.vision.image_size
        generator = torch.Generator().manual_seed(self.seed)
        pixels = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
        return pixels.to(self.device, self.pair.model.gen_embed.weight.dtype)


@dataclass
class ImageRun:
    codes: torch.Tensor  # [N, tokens]
    pixels: torch.Tensor  # [N, ...] on the host
    note: str = ""


@dataclass
class TextRun:
    ttft: float  # seconds to the first token
    decode: float  # seconds for the tokens after the first
    tokens: list[list[int]]  # per row, all generated tokens


# ---------------------------------------------------------------------------- image engines


@contextlib.contextmanager
def sampled_tokens(model: torch.nn.Module, tokens: int) -> Iterator[None]:
    """Within the block, `model` samples `tokens` codes per image (fewer for quick runs)."""
    original = model.config
    model.config = with_gen_tokens(original, tokens)
    try:
        yield
    finally:
        model.config = original


_INT8_MODELS: dict[int, torch.nn.Module] = {}


def int8_model(b: Bench) -> torch.nn.Module:
    """A copy of this engine's model with int8 weight-only LLM layers (made once per model),
    prepared the way `januspro.load(..., quantize="int8")` prepares it."""
    key = id(b.pair.model)
    if key not in _INT8_MODELS:
        model = copy.deepcopy(b.pair.model)
        undo_inference_layout(model)  # quantise the float weights, then pack what stays float
        quantize_model(model, "int8")
        prepare_for_inference(model, b.device)
        _INT8_MODELS[key] = model
    return _INT8_MODELS[key]


def januspro_images(b: Bench, n: int, model: torch.nn.Module | None = None, **kwargs: Any) -> ImageRun:
    """This engine: `generate_image_codes` (one shared prefill, static cache, on-device
    sampling) then `decode_images`."""
    model = model or b.pair.model
    kwargs = {**b.engine_kwargs.get("januspro", {}), **kwargs}
    with sampled_tokens(model, b.tokens):
        codes = generate_image_codes(model, b.gen_prompt, b.pair.ids.pad, n=n, cfg_weight=CFG_WEIGHT,
                                     params=SamplingParams(temperature=1.0), seed=b.seed, **kwargs)
    pixels = decode_images(model, full_grid(codes, b.full_tokens)).cpu()
    return ImageRun(codes, pixels)


def januspro_budget_images(b: Bench, n: int) -> ImageRun:
    """This engine under `--memory-budget-gb` (total, weights included), in the chunks the
    `Janus` API would plan for that budget."""
    if b.memory_budget_gb is None:
        raise ValueError("januspro-budget needs --memory-budget-gb")
    model = b.pair.model
    with sampled_tokens(model, b.tokens):
        plan = plan_chunks(model, n, len(b.gen_prompt), budget_left(model, int(b.memory_budget_gb * 2**30)))
    run = januspro_images(b, n, chunk_size=plan.chunk_size)
    run.note = f"chunks of {plan.chunk_size}"
    return run


def transformers_images(b: Bench, n: int) -> ImageRun:
    """transformers' `JanusForConditionalGeneration.generate(generation_mode="image")`."""
    hf = b.pair.hf
    vision = hf.model.vision_model.config
    ids = torch.tensor([b.gen_prompt], device=b.device)
    torch.manual_seed(b.seed)
    saved, vision.num_image_tokens = vision.num_image_tokens, b.tokens
    try:
        codes = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_mode="image",
                            do_sample=True, temperature=1.0, guidance_scale=CFG_WEIGHT, num_return_sequences=n,
                            **b.engine_kwargs.get("transformers", {}))
    finally:
        vision.num_image_tokens = saved
    pixels = hf.decode_image_tokens(full_grid(codes, b.full_tokens)).float().cpu()
    return ImageRun(codes, pixels)


def original_loop_images(b: Bench, n: int) -> ImageRun:
    """The loop of the original repo's generation_inference.py, on transformers' modules:
    interleaved conditional / unconditional rows, the LLM with its default dynamic cache one
    step at a time, guidance and torch.multinomial on the host-driven loop, all images' codes
    decoded by the VQ model at once."""
    hf, ids = b.pair.hf, b.pair.ids
    prompt = torch.tensor(b.gen_prompt, device=b.device)
    rows = prompt.repeat(2 * n, 1)
    rows[1::2, 1:-1] = ids.pad
    torch.manual_seed(b.seed)
    embeds = hf.get_input_embeddings()(rows)
    codes = torch.zeros(n, b.tokens, dtype=torch.long, device=b.device)
    past = None
    for i in range(b.tokens):
        out = hf.model.language_model(inputs_embeds=embeds, use_cache=True, past_key_values=past)
        past = out.past_key_values
        logits = hf.model.generation_head(out.last_hidden_state[:, -1, :])
        cond, uncond = logits[0::2, :], logits[1::2, :]
        probs = torch.softmax(uncond + CFG_WEIGHT * (cond - uncond), dim=-1)  # temperature 1
        token = torch.multinomial(probs, num_samples=1)
        codes[:, i] = token.squeeze(-1)
        token = torch.cat([token, token], dim=1).view(-1)
        embeds = hf.prepare_embeddings_for_image_generation(token).unsqueeze(1)
    pixels = hf.model.vqmodel.decode(full_grid(codes, b.full_tokens)).float().cpu()
    return ImageRun(codes, pixels)


def januspro_int8_images(b: Bench, n: int) -> ImageRun:
    """This engine with int8 weight-only LLM layers (`--quantize int8`)."""
    return januspro_images(b, n, model=int8_model(b))


ImageEngine = Callable[[Bench, int], ImageRun]
IMAGE_ENGINES: dict[str, ImageEngine] = {
    "januspro": januspro_images,
    "januspro-int8": januspro_int8_images,
    "januspro-budget": januspro_budget_images,
    # the decode step compiled by torch.compile (fusing its small kernels) before graph capture
    "januspro-compiled": functools.partial(januspro_images, compile_step=True),
    "transformers": transformers_images,
    "original-loop": original_loop_images,
}


# ---------------------------------------------------------------------------- text engines


def januspro_text(b: Bench, batch: int, model: torch.nn.Module | None = None, compile: bool = False) -> TextRun:
    """Image encoding + prefill into a static cache, then greedy `decode_tokens`."""
    model, image_id = model or b.pair.model, b.pair.ids.image
    ids = torch.tensor([b.und_prompt] * batch, device=b.device)
    pixels = b.pixels(batch)
    start = clock(b.device)
    embeds = model.embed_prompt(ids, ids == image_id, model.encode_images(pixels))
    decoder = TextDecoder(model, batch, ids.shape[1] + b.new_tokens + 1, compile=compile)
    logits = decoder.extend(embeds)
    steps = decode_tokens(decoder, logits, SamplingParams(temperature=0), [b.seed] * batch, b.new_tokens + 1, [])
    generated = [next(steps)]  # the host has the first tokens
    first = clock(b.device)
    generated += list(steps)
    end = clock(b.device)
    return TextRun(first - start, end - first, [list(row) for row in zip(*generated)])


class _Stamps(BaseStreamer):
    """Records when each generated token reaches the host (the first `put` is the prompt)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times, self.prompt_seen = device, [], False

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_seen:
            self.times.append(clock(self.device))
        self.prompt_seen = True

    def end(self) -> None:
        pass


def transformers_text(b: Bench, batch: int) -> TextRun:
    """transformers' `generate` (greedy, `min_new_tokens` so that every run has the same length)."""
    ids = torch.tensor([b.und_prompt] * batch, device=b.device)
    pixels = b.pixels(batch)
    stamps = _Stamps(b.device)
    count = b.new_tokens + 1
    start = clock(b.device)
    out = b.pair.hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels,
                             do_sample=False, max_new_tokens=count, min_new_tokens=count, streamer=stamps,
                             **b.engine_kwargs.get("transformers", {}))
    end = clock(b.device)
    first = stamps.times[0] if stamps.times else end
    return TextRun(first - start, end - first, out[:, ids.shape[1]:].tolist())


def januspro_int8_text(b: Bench, batch: int) -> TextRun:
    """This engine with int8 weight-only LLM layers (`--quantize int8`)."""
    return januspro_text(b, batch, model=int8_model(b))


TextEngine = Callable[[Bench, int], TextRun]
TEXT_ENGINES: dict[str, TextEngine] = {
    "januspro": januspro_text,
    "januspro-int8": januspro_int8_text,
    "januspro-compiled": functools.partial(januspro_text, compile=True),
    "transformers": transformers_text,
}


@dataclass(frozen=True)
class Schedule:
    """Unmeasured and measured runs per case; the (slow) baselines may get fewer."""

    warmup: int
    repeat: int
    baseline_warmup: int
    baseline_repeat: int

    def runs(self, engine: str) -> tuple[int, int]:
        if engine in BASELINES:
            return self.baseline_warmup, self.baseline_repeat
        return self.warmup, self.repeat


# ---------------------------------------------------------------------------- measuring


def _log_warmup(log: Callable[[str], None], case: str, seconds: float) -> None:
    log(f"{case}: warm-up call {seconds:.1f} s")


def image_rows(b: Bench, engines: Sequence[str], ns: Sequence[int], schedule: Schedule,
               log: Callable[[str], None]) -> Iterator[Row]:
    for n in ns:
        codes_by_engine: dict[str, torch.Tensor] = {}
        for name in engines:
            log(f"image N={n} {name}")
            try:
                call = functools.partial(IMAGE_ENGINES[name], b, n)
                warm = functools.partial(_log_warmup, log, f"image N={n} {name}")
                times, runs, (peak, extra) = repeat_run(call, b.device, *schedule.runs(name), on_warmup=warm)
            except Exception as exc:  # noqa: BLE001 - report the case and go on with the others
                log(f"image N={n} {name} FAILED:\n{traceback.format_exc()}")
                yield failed_row("image", f"N={n}", name, exc, b.device)
                continue
            seconds = statistics.median(times)
            log(f"image N={n} {name}: {seconds:.3f} s (runs {', '.join(f'{t:.3f}' for t in times)}), "
                f"peak {'n/a' if peak is None else f'{peak / 2**20:,.0f} MiB'}")
            note = runs[-1].note
            codes_by_engine[name] = runs[-1].codes
            if name == "januspro-budget" and "januspro" in codes_by_engine:
                same = torch.equal(codes_by_engine["januspro"], runs[-1].codes)
                note += ", codes = unchunked" if same else ", codes DIFFER from unchunked"
            if name == "januspro-budget" and b.device.type == "cuda" and peak is not None:
                within = peak <= b.memory_budget_gb * 2**30
                note += f", peak {'within' if within else 'OVER'} {b.memory_budget_gb:g} GB"
            yield Row("image", f"N={n}", name, seconds, n / seconds, "img/s", peak, extra, note.lstrip(", "))


def text_rows(b: Bench, engines: Sequence[str], batches: Sequence[int], schedule: Schedule,
              log: Callable[[str], None]) -> Iterator[Row]:
    for batch in batches:
        measured: dict[str, tuple[list[TextRun], tuple]] = {}
        for name in engines:
            log(f"understand B={batch} {name}")
            try:
                call = functools.partial(TEXT_ENGINES[name], b, batch)
                warm = functools.partial(_log_warmup, log, f"understand B={batch} {name}")
                _, runs, memory = repeat_run(call, b.device, *schedule.runs(name), on_warmup=warm)
            except Exception as exc:  # noqa: BLE001 - report the case and go on with the others
                log(f"understand B={batch} {name} FAILED:\n{traceback.format_exc()}")
                yield failed_row("understand-ttft", f"B={batch}", name, exc, b.device)
                continue
            measured[name] = runs, memory
            log(f"understand B={batch} {name}: first token {statistics.median(r.ttft for r in runs):.3f} s, "
                f"decode {statistics.median(r.decode for r in runs):.3f} s for {b.new_tokens} tokens")
        reference = measured["transformers"][0][-1].tokens if "transformers" in measured else None
        for name, (runs, (peak, extra)) in measured.items():
            ttft = statistics.median(r.ttft for r in runs)
            decode = statistics.median(r.decode for r in runs)
            note = ""
            if reference is not None and name != "transformers":
                same = sum(x == y for mine, theirs in zip(runs[-1].tokens, reference) for x, y in zip(mine, theirs))
                total = sum(len(row) for row in reference)
                note = "greedy tokens = transformers" if same == total else f"greedy tokens {same}/{total} = transformers"
            yield Row("understand-ttft", f"B={batch}", name, ttft, None, "", peak, extra, note)
            yield Row("understand-decode", f"B={batch}", name, decode, batch * b.new_tokens / max(decode, 1e-9),
                      "tok/s", peak, extra)


def bundled_rows(source: str, device: torch.device, dtype: torch.dtype | None, warmup: int, repeat: int,
                 log: Callable[[str], None]) -> Iterator[Row]:
    """The bundled model (or a checkpoint folder) making 4 images through `Janus.generate_images`."""
    from januspro.engine import ImageOptions
    from januspro.errors import JanusError, ModelNotFoundError

    log("bundled N=4")
    try:
        janus = januspro.load(None if source == "auto" else source, device=str(device), dtype=dtype)
    except ModelNotFoundError as exc:
        reason = "no bundled model installed (--bundled-model DIR times a checkpoint)" if source == "auto" else str(exc)
        yield Row("bundled", "N=4", "januspro", None, None, "img/s", None, None, f"skipped: {reason}")
        return
    except JanusError as exc:
        yield Row("bundled", "N=4", "januspro", None, None, "img/s", None, None, f"skipped: {exc}")
        return
    # Plain sampling, then the model's default: for the bundled model each image its own pick of 16 samples, ranked
    # by the captions the prompt stands for (one for a pair prompt, 18 sizes and places for a one-object prompt)
    # and the split checks of a relation (5 lines) or a count (5 lines each way).
    pair, single, count = "a red circle to the left of a blue square", "a red circle", "three green triangles"
    ranked = janus.candidates(ImageOptions(n=4))
    runs = [(1, "N=4", pair)]
    if ranked > 1:
        runs += [(ranked, f"N=4, best of {4 * ranked}", pair),
                 (ranked, f"N=4, best of {4 * ranked}, one object", single),
                 (ranked, f"N=4, best of {4 * ranked}, a count", count)]
    for candidates, label, prompt in runs:
        options = ImageOptions(n=4, seed=0, candidates=candidates)
        call = functools.partial(janus.generate_images, prompt, options)
        times, results, (peak, extra) = repeat_run(call, device, max(warmup, 1), repeat)  # small: always warm up
        seconds = statistics.median(times)
        size = results[-1].images[0].size
        yield Row("bundled", label, "januspro", seconds, 4 / seconds, "img/s", peak, extra,
                  f"{janus.name}, {size[0]}x{size[1]} px, {parameter_count(janus.model) / 1e6:.1f}M params")


# ---------------------------------------------------------------------------- main


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=["1b", "7b", "tiny"], default="1b", help="reference config (tiny: smoke tests)")
    p.add_argument("--layers", type=int, help="LLM layers (default: all on cuda, 2 on cpu)")
    p.add_argument("--vision-layers", type=int, help="SigLIP layers (default: reduced in proportion to --layers)")
    p.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="default: bf16 on cuda, fp32 on cpu")
    p.add_argument("--n", type=_ints, help="images per prompt (default: 1,4,16 on cuda, 1,4 on cpu)")
    p.add_argument("--tokens", type=int, help="image tokens sampled per image (default 576 on cuda, 32 on cpu)")
    p.add_argument("--text-tokens", type=int, help="understanding: tokens decoded after the first (default 128 cuda, 8 cpu)")
    p.add_argument("--prompt-tokens", type=int, default=32, help="text tokens in each prompt (besides the image)")
    p.add_argument("--text-batch", type=_ints, default=[1, 8], help="understanding batch sizes (default 1,8)")
    p.add_argument("--tasks", default="image,understand,bundled", help="any of image,understand,bundled")
    p.add_argument("--variants", help="engines, comma-separated (default: januspro,transformers,original-loop "
                   "and januspro-budget when --memory-budget-gb is given)")
    p.add_argument("--skip-transformers", action="store_true", help="run only this engine's variants")
    p.add_argument("--memory-budget-gb", type=float, help="also run januspro-budget with this total memory budget")
    p.add_argument("--engine-kwargs", action="append", default=[], metavar="NAME=JSON",
                   help='keywords passed to an engine, e.g. januspro=\'{"chunk_size": 4}\'')
    p.add_argument("--bundled-model", default="auto", help="'auto' (the bundled model) or a checkpoint folder")
    p.add_argument("--repeat", type=int, help="measured runs per case (default 3 cuda, 1 cpu)")
    p.add_argument("--warmup", type=int, help="unmeasured runs per case first (default 1 cuda, 0 cpu)")
    p.add_argument("--baseline-repeat", type=int, help="measured runs of transformers / original-loop (default --repeat)")
    p.add_argument("--baseline-warmup", type=int, help="warm-up runs of transformers / original-loop (default --warmup)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--save", metavar="PATH", help="also write the JSON object to PATH")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the table (or JSON) and returns the result object."""
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype or ("bf16" if cuda else "fp32")]
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    tasks = {t.strip() for t in args.tasks.split(",") if t.strip()}

    variants = args.variants.split(",") if args.variants else ["januspro", "transformers", "original-loop"]
    if args.memory_budget_gb is not None and not args.variants:
        variants.insert(1, "januspro-budget")
    if args.skip_transformers:
        variants = [v for v in variants if v.startswith("januspro")]
    unknown = [v for v in variants if v not in IMAGE_ENGINES and v not in TEXT_ENGINES]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(set(IMAGE_ENGINES) | set(TEXT_ENGINES))}")
    unknown_tasks = tasks - {"image", "understand", "bundled"}
    if unknown_tasks:
        raise SystemExit(f"unknown tasks {sorted(unknown_tasks)}; known: image, understand, bundled")
    engine_kwargs = {}
    for item in args.engine_kwargs:
        name, _, text = item.partition("=")
        try:
            engine_kwargs[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--engine-kwargs {item!r}: not NAME=JSON ({exc})") from None

    log(f"building {args.config} models on {device} ({dtype})")
    pair = build_pair(args.config, args.layers or (None if cuda else 2), args.vision_layers, device, dtype, args.seed)
    prepare_for_inference(pair.model, device)  # what januspro.load does (the transformers model keeps its own tensors)
    reshare_fused_weights(pair)  # ... except the fused LLM projections, which both models use again
    ref, ids = pair.reference, pair.ids
    full_tokens = ref.num_gen_tokens
    tokens = min(args.tokens or (full_tokens if cuda else 32), full_tokens)
    generator = torch.Generator().manual_seed(args.seed)
    text = torch.randint(8, ids.lowest, (args.prompt_tokens,), generator=generator).tolist()
    half = len(text) // 2
    bench = Bench(
        pair=pair, device=device, tokens=tokens,
        gen_prompt=[ids.bos] + text + [ids.boi],
        und_prompt=[ids.bos] + text[:half] + [ids.boi] + [ids.image] * ref.num_image_tokens + [ids.eoi] + text[half:],
        new_tokens=args.text_tokens or (128 if cuda else 8), seed=args.seed,
        memory_budget_gb=args.memory_budget_gb, engine_kwargs=engine_kwargs,
    )
    repeat = args.repeat or (3 if cuda else 1)
    warmup = args.warmup if args.warmup is not None else (1 if cuda else 0)
    schedule = Schedule(warmup, repeat, warmup if args.baseline_warmup is None else args.baseline_warmup,
                        args.baseline_repeat or repeat)
    header = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": device_name(device), "device_type": device.type, "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "config": args.config, "config_source": pair.source,
        "layers": pair.layers, "layers_full": ref.language.num_hidden_layers,
        "vision_layers": pair.vision_layers, "vision_layers_full": ref.vision.num_built_layers,
        "params": pair.params, "params_full": pair.params_reference,
        "tokens_per_image": tokens, "tokens_full": full_tokens, "image_size": ref.vision.image_size,
        "gen_prompt_tokens": len(bench.gen_prompt), "und_prompt_tokens": len(bench.und_prompt),
        "new_tokens": bench.new_tokens, "warmup": warmup, "repeat": repeat,
        "baseline_warmup": schedule.baseline_warmup, "baseline_repeat": schedule.baseline_repeat, "variants": variants,
        "memory_budget_gb": args.memory_budget_gb, "bundled_model": args.bundled_model, "cfg_weight": CFG_WEIGHT,
        "memory_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS of the process (VmHWM), rough",
    }

    rows: list[Row] = []
    with torch.inference_mode():
        if "januspro-int8" in variants:
            log("making the int8 copy (outside the timed runs)")
            int8_model(bench)
        if "image" in tasks:
            ns = args.n or ([1, 4, 16] if cuda else [1, 4])
            rows += image_rows(bench, [v for v in variants if v in IMAGE_ENGINES], ns, schedule, log)
        if "understand" in tasks:
            rows += text_rows(bench, [v for v in variants if v in TEXT_ENGINES], args.text_batch, schedule, log)
    del bench, pair
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    if "bundled" in tasks:
        rows += bundled_rows(args.bundled_model, device, None, warmup, repeat, log)
    add_speedups(rows)
    result = {"header": header, "rows": [asdict(r) for r in rows]}
    result["targets"] = targets(header, rows)
    text = json.dumps(result, indent=2, allow_nan=False, default=str)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text if args.json else format_table(result))
    return result


if __name__ == "__main__":
    main()
