"""The one loading path: folder or hub id -> config -> meta-device model -> tensors -> key map ->
strict load -> device and dtype.

Weights are read tensor by tensor (safetensors memory-mapped, or `torch.load(weights_only=True,
mmap=True)` for `.bin`), converted straight to the target dtype and device and assigned into
the meta-initialised model, so no second full copy of the weights ever exists. Any missing,
unexpected or wrongly shaped tensor is an error that names it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch

from januspro import keymap
from januspro.config import JanusConfig
from januspro.errors import CheckpointError, ModelNotFoundError
from januspro.models.janus import JanusModel

log = logging.getLogger(__name__)

WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Files a model folder may need; what a hub download fetches.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "tokenizer.model", "*.txt"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class LoadReport:
    """Where the weights came from and how they were mapped (shown by `januspro info`)."""

    folder: Path
    files: tuple[str, ...]
    layout: str
    num_tensors: int
    tied_lm_head: bool = False


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A local checkpoint folder for `name_or_path`: the folder itself, or the hub snapshot of
    a repository id (from the local cache, else downloaded)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; pass the checkpoint folder that holds config.json")
    text = str(name_or_path)
    if not _HUB_ID.match(text) or text.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model folder {text!r} does not exist")
    return _hub_snapshot(text)


def _hub_snapshot(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a hard dependency
        raise ModelNotFoundError(f"{repo_id!r} is not a local folder and huggingface_hub is not installed") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise ModelNotFoundError(
            f"model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            f"download it first (huggingface-cli download {repo_id}) or pass a local folder"
        )
    try:
        log.info("downloading %s from the Hugging Face hub", repo_id)
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # network, auth, missing repo: all say the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(
            f"model {repo_id!r} is not in the local Hugging Face cache and could not be downloaded "
            f"({reason}); download it on a connected machine or pass a local folder"
        ) from None


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's weight files in reading order (sharded or single)."""
    for index_name in WEIGHT_INDEXES:
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"{index}: malformed shard index ({exc})") from None
            shards = sorted(set(weight_map.values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise CheckpointError(f"{folder}: shard files listed in {index_name} are missing: {', '.join(missing)}")
            return [folder / s for s in shards]
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    raise CheckpointError(
        f"{folder}: no weights found (expected model.safetensors, pytorch_model.bin or a sharded index)"
    )


def iter_tensors(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs of every weight file, one tensor in memory at a time."""
    for file in files:
        if file.suffix == ".safetensors":
            yield from _iter_safetensors(file)
        else:
            yield from _iter_torch_file(file)


def _iter_safetensors(file: Path) -> Iterator[tuple[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(file), framework="pt", device="cpu")
        names = list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: corrupt or truncated safetensors file ({exc})") from None
    for name in names:
        try:
            yield name, handle.get_tensor(name)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{file}: cannot read tensor {name!r} ({exc})") from None


def _iter_torch_file(file: Path) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            state = torch.load(file, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as exc:  # pickle, zip and EOF errors all mean the same here
        raise CheckpointError(f"{file}: corrupt, truncated or unsafe PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: expected a state dict, found {type(state).__name__}")
    for name in list(state):
        tensor = state.pop(name)
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{file}: entry {name!r} is not a tensor")
        yield name, tensor


def _name_list(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(
    model: JanusModel, files: list[Path], device: torch.device, dtype: torch.dtype
) -> tuple[str, int, bool]:
    """Fill a meta-device `model` from `files`, strictly. Returns (layout, tensors, tied)."""
    expected = {name: tensor for name, tensor in model.state_dict(keep_vars=True).items()}
    tied_head = model.config.language.tie_word_embeddings
    if tied_head:
        expected.pop("language_model.lm_head.weight", None)

    stream = iter_tensors(files)
    head: list[tuple[str, torch.Tensor]] = []  # tensors read until a name tells the layout
    for item in stream:
        head.append(item)
        if keymap.layout_of(item[0]) is not None:
            break
    if not head:
        raise CheckpointError(f"{files[0]}: the checkpoint holds no tensors")
    layout = keymap.detect_layout(name for name, _ in head)
    stream = itertools.chain(head, stream)
    if layout == keymap.TRANSFORMERS:
        stream = keymap.from_transformers(stream)

    loaded: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    misshapen: set[str] = set()
    for name, tensor in stream:
        target = expected.get(name)
        if target is None:
            unexpected.append(name)
            continue
        if tuple(tensor.shape) != tuple(target.shape):
            mismatched.append(f"{name} (checkpoint {tuple(tensor.shape)}, model {tuple(target.shape)})")
            misshapen.add(name)
            continue
        want = dtype if tensor.is_floating_point() else tensor.dtype
        loaded[name] = tensor.to(device=device, dtype=want)

    tied = False
    head, embed = "language_model.lm_head.weight", "language_model.model.embed_tokens.weight"
    if layout == keymap.TRANSFORMERS and head in expected and head not in loaded and embed in loaded:
        loaded[head] = loaded[embed]  # transformers saves tied heads once
        tied = True
    missing = [n for n in expected if n not in loaded and n not in misshapen]
    problems = []
    if missing:
        problems.append(f"missing tensors: {_name_list(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_name_list(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_name_list(mismatched, 4)}")
    if problems:
        raise CheckpointError(
            f"checkpoint does not match its config.json ({layout} layout): " + "; ".join(problems)
        )
    model.load_state_dict(loaded, strict=not tied_head, assign=True)
    if tied_head:
        model.language_model.lm_head.weight = model.language_model.model.embed_tokens.weight
    return layout, len(loaded), tied


def load_model(
    folder: Path, device: torch.device, dtype: torch.dtype, config: JanusConfig | None = None
) -> tuple[JanusModel, LoadReport]:
    """Build the model of `folder` on the meta device and load its weights strictly."""
    config = config or JanusConfig.from_file(folder / "config.json")
    files = weight_files(folder)
    with torch.device("meta"):
        model = JanusModel(config)
    layout, count, tied = load_weights(model, files, device, dtype)
    model.eval().requires_grad_(False)
    report = LoadReport(folder, tuple(f.name for f in files), layout, count, tied)
    log.info("loaded %d tensors (%s layout) from %s", count, layout, folder)
    return model, report


def save_weights(
    state: Mapping[str, torch.Tensor],
    config: JanusConfig,
    folder: Path,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int | None = None,
) -> list[Path]:
    """Write a model's state dict (official names) and its config.json as safetensors,
    sharded with an index when larger than `max_shard_bytes`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    tensors = {}
    for name, tensor in state.items():
        if name == "language_model.lm_head.weight" and config.language.tie_word_embeddings:
            continue
        tensor = tensor.detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.cpu().contiguous()
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if max_shard_bytes is None or total <= max_shard_bytes:
        path = folder / "model.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt"})
        return [path]
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    paths, weight_map = [], {}
    for i, shard in enumerate(shards, 1):
        path = folder / f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path), metadata={"format": "pt"})
        paths.append(path)
        weight_map.update({name: path.name for name in shard})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return paths
