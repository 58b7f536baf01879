"""Upscaling generated images 2x or 4x: Real-ESRGAN when its weights are at hand, else Lanczos.

    images, method = upscale_images(images, 2)                       # $JANUSPRO_UPSCALER or Lanczos
    images, method = upscale_images(images, 4, weights="RealESRGAN_x4plus.pth", device="cuda")

Real-ESRGAN's generator is ESRGAN's RRDBNet (Residual-in-Residual Dense Blocks), written here
with the module names of BasicSR's `rrdbnet_arch.py`, so the public weight files load as they
are: `RealESRGAN_x4plus.pth` (3 input channels) and `RealESRGAN_x2plus.pth` /
`RealESRGAN_x2.pth` (the 2x model pixel-unshuffles its input by 2 first, hence 12 input
channels). A file's state dict may sit under `params_ema` (the released files), `params`, or at
the top level; `.safetensors` files work too. The architecture (scale, width, depth) is read from
the tensors' shapes and every key and shape is checked, so a wrong file is a clear error.

Large images run in overlapping tiles so that memory stays bounded whatever the input size.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from januspro.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

ENV_VAR = "JANUSPRO_UPSCALER"
FACTORS = (2, 4)
# File names looked for in a weights folder, best first, by the scale of the network inside.
WEIGHT_FILE_NAMES = {
    2: ("RealESRGAN_x2plus.pth", "RealESRGAN_x2.pth", "RealESRGAN_x2plus.safetensors", "RealESRGAN_x2.safetensors"),
    4: ("RealESRGAN_x4plus.pth", "RealESRGAN_x4.pth", "RealESRGAN_x4plus.safetensors", "RealESRGAN_x4.safetensors"),
}
NO_WEIGHTS_HINT = f"set --upscale-weights or {ENV_VAR}"
# Input pixels per tile side and the context each tile sees beyond its own area.
TILE = 256
TILE_PAD = 16


# ------------------------------------------------------------------------------ network


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the block input and all earlier outputs."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x  # residual scaling 0.2, as ESRGAN


class RRDB(nn.Module):
    """Three residual dense blocks inside one more (scaled) residual connection."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@dataclass(frozen=True)
class RRDBNetSpec:
    """The shape of an RRDBNet. Real-ESRGAN's released models: scale 2 or 4, 64 features,
    23 blocks, growth 32 (the anime 4x model has 6 blocks)."""

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_in_ch: int = 3
    num_out_ch: int = 3

    @property
    def unshuffle(self) -> int:
        """Pixel-unshuffle factor applied to the input: the network always upsamples 4x, so the
        2x model first folds 2x2 pixels into channels (and a 1x model 4x4)."""
        return {4: 1, 2: 2, 1: 4}[self.scale]


class RRDBNet(nn.Module):
    """ESRGAN's generator as Real-ESRGAN uses it (BasicSR module names, so the weight files'
    keys match): conv_first, `num_block` RRDBs in `body`, conv_body, two nearest-neighbour 2x
    upsampling convolutions, conv_hr and conv_last."""

    def __init__(self, spec: RRDBNetSpec = RRDBNetSpec()) -> None:
        super().__init__()
        if spec.scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {spec.scale}")
        self.spec = spec
        feat = spec.num_feat
        self.conv_first = nn.Conv2d(spec.num_in_ch * spec.unshuffle**2, feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(feat, spec.num_grow_ch) for _ in range(spec.num_block)])
        self.conv_body = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(feat, spec.num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    @property
    def scale(self) -> int:
        return self.spec.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in [0, 1] -> [B, C, H*scale, W*scale]; H and W must be multiples of
        `spec.unshuffle`."""
        if self.spec.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.spec.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


# ------------------------------------------------------------------------------ weights


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weight file: `.safetensors`, or a PyTorch pickle whose state dict is
    under `params_ema`, `params` or at the top level (read with weights_only, never executing
    code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"upscaler weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a weight file at all
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if first.startswith("Weights only load failed"):  # torch's long explanation of its safe loader
            first = "not a PyTorch file of tensors"
        raise CheckpointError(f"upscaler weights {path}: not a readable weight file ({first.split('. ')[0][:200]})") from None
    if isinstance(data, Mapping):
        for key in ("params_ema", "params"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError(f"upscaler weights {path}: holds no state dict (expected 'params_ema', 'params' or tensors)")
    state = {str(k): v for k, v in data.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"upscaler weights {path}: {bad[0]!r} is not a tensor")
    return state


def infer_spec(state: Mapping[str, torch.Tensor], source: str = "state dict") -> RRDBNetSpec:
    """The RRDBNet a state dict belongs to, from its tensor shapes."""
    if any(k.startswith("model.0.") for k in state):
        raise CheckpointError(f"{source}: old ESRGAN layout ('model.0.weight', ...); use a Real-ESRGAN/BasicSR file")
    for key in ("conv_first.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if key not in state or state[key].dim() != 4:
            raise CheckpointError(f"{source}: not a Real-ESRGAN RRDBNet state dict (no 4-d {key!r})")
    first, last = state["conv_first.weight"], state["conv_last.weight"]
    num_out = last.shape[0]
    in_channels = first.shape[1]
    scales = {c: s for s, c in ((4, num_out), (2, num_out * 4), (1, num_out * 16))}
    if in_channels not in scales:
        raise CheckpointError(
            f"{source}: conv_first takes {in_channels} channels; expected {num_out} (4x), {num_out * 4} (2x) "
            f"or {num_out * 16} (1x)"
        )
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    return RRDBNetSpec(
        scale=scales[in_channels],
        num_feat=first.shape[0],
        num_block=max(blocks) + 1,
        num_grow_ch=state["body.0.rdb1.conv1.weight"].shape[0],
        num_in_ch=num_out,
        num_out_ch=num_out,
    )


def check_state_dict(net: nn.Module, state: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Raise CheckpointError naming the first missing, unexpected or wrongly shaped tensors."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{what}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source}: does not match Real-ESRGAN's RRDBNet ({'; '.join(problems)})")


def load_rrdbnet(path: str | Path, device: str | torch.device | None = None) -> RRDBNet:
    """An RRDBNet with the weights of `path`, in eval mode, on `device` (default cpu); fp16 on
    CUDA (as Real-ESRGAN runs), fp32 elsewhere."""
    state = read_state_dict(path)
    spec = infer_spec(state, str(path))
    net = RRDBNet(spec)
    check_state_dict(net, state, str(path))
    net.load_state_dict(state, strict=True)
    device = torch.device(device or "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    return net.to(device=device, dtype=dtype).eval()


@functools.lru_cache(maxsize=4)
def _cached_net(path: str, mtime_ns: int, device: str) -> RRDBNet:
    return load_rrdbnet(path, device)


def cached_rrdbnet(path: str | Path, device: str | torch.device | None = None) -> RRDBNet:
    """`load_rrdbnet`, loaded once per file (and version of it) and device."""
    path = Path(path).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0  # read_state_dict says what is wrong
    return _cached_net(str(path), mtime, str(torch.device(device or "cpu")))


def find_weights(factor: int, weights: str | Path | None = None) -> Path | None:
    """The weight file to use for `factor`: `weights` (a file, or a folder holding the
    released files), else $JANUSPRO_UPSCALER (same), else None. A folder without a file for
    `factor` gives its 4x file for 2x (downsized afterwards), else None."""
    return locate_weights(factor, weights)[0]


def locate_weights(factor: int, weights: str | Path | None) -> tuple[Path | None, str]:
    """(the weight file for `factor`, or None and the reason in words); see find_weights."""
    origin = "upscaler weights"
    if weights is None or str(weights) == "":
        weights = os.environ.get(ENV_VAR) or None
        origin = ENV_VAR
        if weights is None:
            return None, f"no Real-ESRGAN weights; {NO_WEIGHTS_HINT}"
    path = Path(weights).expanduser().resolve()
    if path.is_file():
        return path, ""
    if not path.is_dir():
        raise CheckpointError(f"{origin} {str(weights)!r}: no such file or folder")
    for scale in sorted((s for s in WEIGHT_FILE_NAMES if s >= factor), key=lambda s: (s != factor, s)):
        for name in WEIGHT_FILE_NAMES[scale]:
            if (path / name).is_file():
                return path / name, ""
    return None, f"no {WEIGHT_FILE_NAMES[factor][0]} in {path}"


def weights_summary(weights: str | Path | None = None, device: str | torch.device | None = None) -> dict[int, str]:
    """For each supported factor, what `upscale_images` would use (for startup messages);
    loads each network once, so a corrupt file is reported now rather than on first use."""
    summary = {}
    for factor in FACTORS:
        path, reason = locate_weights(factor, weights)
        if path is None:
            summary[factor] = f"Lanczos resampling ({reason})"
            continue
        summary[factor] = _method(cached_rrdbnet(path, device), path, factor)
    return summary


# ------------------------------------------------------------------------------ upscaling


def lanczos(images: Sequence[Image.Image], factor: int) -> list[Image.Image]:
    return [im.resize((im.width * factor, im.height * factor), Image.LANCZOS) for im in images]


def _method(net: RRDBNet, path: Path, factor: int) -> str:
    if net.scale < factor:
        return f"Lanczos resampling ({path.name} is a {net.scale}x model; {factor}x needs RealESRGAN_x{factor}plus.pth)"
    method = f"Real-ESRGAN x{net.scale} ({path})"
    return method if net.scale == factor else f"{method}, resized to {factor}x with Lanczos"


@torch.inference_mode()
def run_rrdbnet(net: RRDBNet, image: Image.Image, tile: int = TILE, tile_pad: int = TILE_PAD) -> Image.Image:
    """One RGB image through the network at its own scale, tile by tile (each tile with
    `tile_pad` pixels of context on every side, cropped off afterwards, so no seams)."""
    param = next(net.parameters())
    array = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
    x = array.view(image.height, image.width, 3).permute(2, 0, 1)[None].to(param.device, param.dtype) / 255.0
    height, width = image.height, image.width
    # Pixel-unshuffle needs sides that are multiples of its factor: pad by replication, crop later.
    multiple = net.spec.unshuffle
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    tile = max(multiple, tile - tile % multiple)
    tile_pad = tile_pad - tile_pad % multiple
    scale = net.scale
    _, _, full_h, full_w = x.shape
    out = torch.empty(1, 3, full_h * scale, full_w * scale, device=x.device, dtype=x.dtype)
    for top in range(0, full_h, tile):
        for left in range(0, full_w, tile):
            bottom, right = min(top + tile, full_h), min(left + tile, full_w)
            in_top, in_left = max(top - tile_pad, 0), max(left - tile_pad, 0)
            in_bottom, in_right = min(bottom + tile_pad, full_h), min(right + tile_pad, full_w)
            result = net(x[:, :, in_top:in_bottom, in_left:in_right])
            crop = result[:, :, (top - in_top) * scale : (bottom - in_top) * scale,
                          (left - in_left) * scale : (right - in_left) * scale]
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = crop
    out = out[:, :, : height * scale, : width * scale]
    pixels = (out[0].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().cpu()
    return Image.fromarray(pixels.numpy(), "RGB")


def upscale_images(
    images: Sequence[Image.Image],
    factor: int,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
) -> tuple[list[Image.Image], str]:
    """`images` upscaled `factor` (2 or 4) times, and the method used, in words.

    Weights: `weights` (a file or a folder), else $JANUSPRO_UPSCALER; without any for this
    factor, Lanczos resampling. A 4x network serves 2x by downsizing its output with Lanczos
    (as Real-ESRGAN's own `--outscale` does)."""
    if factor not in FACTORS:
        raise InputError(f"upscale factor must be one of {', '.join(map(str, FACTORS))}, got {factor}")
    path, reason = locate_weights(factor, weights)
    if path is None:
        return lanczos(images, factor), f"Lanczos resampling ({reason})"
    net = cached_rrdbnet(path, device)
    method = _method(net, path, factor)
    if net.scale < factor:
        return lanczos(images, factor), method
    out = []
    for image in images:
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        result = run_rrdbnet(net, image)
        if net.scale != factor:
            result = result.resize((image.width * factor, image.height * factor), Image.LANCZOS)
        if alpha is not None:
            result.putalpha(alpha.resize(result.size, Image.LANCZOS))
        out.append(result)
    log.info("upscaled %d image(s) %dx with %s", len(out), factor, method)
    return out, method
