"""Image I/O and preprocessing for the understanding encoder.

Preprocessing follows the original `VLMImageProcessor`: scale so that the long side is
`image_size` (bicubic, aspect ratio kept, short side at least `min_size`), pad to a square with
the mean colour, rescale to [0, 1] and normalise with the checkpoint's mean and std.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from januspro.errors import CheckpointError, InputError

ImageSource = Union[str, Path, bytes, Image.Image, np.ndarray]

# Refuse decompression bombs well before PIL's own limit would.
MAX_IMAGE_PIXELS = 64_000_000


def load_image(source: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An RGB PIL image from a path, raw bytes, a numpy array or a PIL image.

    Raises InputError with the reason if the data is missing, not an image, or too large."""
    if isinstance(source, Image.Image):
        image = source
        name = "image"
    elif isinstance(source, np.ndarray):
        try:
            image = Image.fromarray(source)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot use the array as an image ({exc})") from None
        name = "array"
    else:
        if isinstance(source, (bytes, bytearray)):
            data, name = bytes(source), "image data"
        else:
            path = Path(source)
            name = str(path)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise InputError(f"image {name!r}: no such file") from None
            except OSError as exc:
                raise InputError(f"image {name!r}: cannot read ({exc.strerror or exc})") from None
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise InputError(f"{name}: {image.width}x{image.height} is larger than {max_pixels} pixels")
            image.load()
        except InputError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(f"{name}: not a readable image ({type(exc).__name__})") from None
    if image.width < 1 or image.height < 1:
        raise InputError(f"{name}: empty image")
    if image.width * image.height > max_pixels:
        raise InputError(f"{name}: {image.width}x{image.height} is larger than {max_pixels} pixels")
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB")
    return image


@dataclass(frozen=True)
class ImageProcessor:
    image_size: int = 384
    min_size: int = 14
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1.0 / 255.0
    do_normalize: bool = True

    @property
    def background(self) -> tuple[int, int, int]:
        return tuple(int(m * 255) for m in self.image_mean)  # type: ignore[return-value]

    @classmethod
    def from_folder(cls, folder: Path, default_size: int) -> "ImageProcessor":
        path = folder / "preprocessor_config.json"
        if not path.is_file():
            return cls(image_size=default_size)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
        size = data.get("image_size")
        if size is None and isinstance(data.get("size"), dict):  # transformers' layout
            size = data["size"].get("height")
        kwargs: dict[str, Any] = {"image_size": int(size or default_size)}
        for key in ("min_size", "rescale_factor", "do_normalize"):
            if key in data:
                kwargs[key] = data[key]
        for key in ("image_mean", "image_std"):
            if data.get(key) is not None:
                kwargs[key] = tuple(float(x) for x in data[key])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_processor_type": "VLMImageProcessor",
            "image_size": self.image_size,
            "min_size": self.min_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
        }

    def resize_and_pad(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        longest = max(width, height)
        new_w = max(int(width / longest * self.image_size), self.min_size)
        new_h = max(int(height / longest * self.image_size), self.min_size)
        image = image.resize((new_w, new_h), Image.BICUBIC)
        if new_w == new_h:
            return image
        side = max(new_w, new_h)
        canvas = Image.new("RGB", (side, side), self.background)
        canvas.paste(image, ((side - new_w) // 2, (side - new_h) // 2))
        return canvas

    def to_array(self, image: Image.Image) -> np.ndarray:
        """[3, S, S] float32 normalised pixels of one image."""
        pixels = np.asarray(self.resize_and_pad(image), dtype=np.float32) * self.rescale_factor
        if self.do_normalize:
            pixels = (pixels - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return pixels.transpose(2, 0, 1)

    def __call__(self, images: Sequence[ImageSource]) -> torch.Tensor:
        """[M, 3, S, S] float32 pixel values for M images."""
        if not images:
            return torch.zeros(0, 3, self.image_size, self.image_size)
        return torch.from_numpy(np.stack([self.to_array(load_image(im)) for im in images]))


def shifted_image(image: Image.Image, dx: int, dy: int, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """`image` moved `dx` px right and `dy` px down (negative: left, up) on a canvas of its size filled with
    `fill`; what moves off the canvas is cut. A second read of a sample for ranking (`JanusProcessor.ranking_shift`)."""
    canvas = Image.new("RGB", image.size, fill)
    canvas.paste(image.convert("RGB"), (dx, dy))
    return canvas


def pixels_to_pil(pixels: torch.Tensor) -> list[Image.Image]:
    """[B, 3, H, W] decoder output in [-1, 1] -> PIL images (clipped to [0, 255])."""
    # As the original: scale, clip, truncate to uint8.
    array = ((pixels.float() + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)
    array = array.permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


def pil_to_pixels(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """PIL images -> [B, 3, size, size] in [-1, 1], the VQ tokenizer's input range."""
    arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


def image_part(image: Image.Image, axis: str, line: int, before: bool,
               fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """`image` with one side of a line painted `fill`: `axis` "x" a vertical line at x = `line` (keeping the
    columns left of it if `before`, else those from it on), "y" a horizontal one (keeping the rows above it,
    else those from it on). A partial read of a sample for ranking (`JanusProcessor.ranking_split_checks`)."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    width, height = image.size
    if axis == "x":
        box = (line, 0, width, height) if before else (0, 0, line, height)
    else:
        box = (0, line, width, height) if before else (0, 0, width, line)
    part = image.convert("RGB")  # (a copy, for an RGB image too)
    if box[2] > box[0] and box[3] > box[1]:
        part.paste(fill, box)
    return part
