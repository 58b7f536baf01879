"""ShapesEval's image judge: find the objects of an image and check them against a prompt.

As `shared/shapes-world.md` says: objects are 4-connected components of the pixels farther
than 60 (Euclidean RGB) from white, components under 20 px ignored. Per object: colour = the
palette colour nearest its mean RGB; shape from the fill ratio of its bounding box (square >
0.88, circle 0.62 to 0.88, triangle < 0.62); centre = centre of its bounding box; position =
the grid cell of its centre. Size (not fixed by the contract): `large` when the longer side of
the bounding box is at least 17 px (halfway between 12 and 22), else `small`.

A prompt (`language.PromptSpec`) is judged by its category:
- single_object: exactly one object, colour and shape right, size and position where given;
- colors: exactly one object, of the named colour (its shape is not checked);
- counting: exactly N objects, all of the named colour and shape;
- two_objects, color_attribution: an object of each named colour-and-shape (the prompts of
  color_attribution name two colours and two shapes, so colours must bind to the right shapes);
- position: such a pair whose centres satisfy the relation (12 px rule).
Other objects may be present in the last three.

Images that are not 64x64 are first resized to 64x64: NEAREST when enlarging (a model that
draws 32 px images: every pixel becomes a 2x2 block, colours untouched), BOX (area average)
when shrinking (a model that draws 384 px images).

Components are labelled from pixel runs (per row) joined with a union-find, in numpy and a
little Python (no scipy): `detect` takes about 0.5 ms per 64x64 image, scene or noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from januspro.shapes.language import PromptSpec
from januspro.shapes.world import IMAGE_SIZE, PALETTE, SIZES, Obj, Scene, position_name, relation_holds

WHITE_DISTANCE = 60.0
MIN_PIXELS = 20
SQUARE_FILL = 0.88  # fill ratio above: square
CIRCLE_FILL = 0.62  # fill ratio from here to SQUARE_FILL: circle; below: triangle
LARGE_SIDE = 17  # longer bounding-box side from here: large
CATEGORIES: tuple[str, ...] = ("single_object", "two_objects", "counting", "colors", "position", "color_attribution")

_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[c] for c in _PALETTE_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class Detected:
    """One object found in an image."""

    color: str
    shape: str
    size: str
    box: tuple[int, int, int, int]  # left, top, right, bottom (inclusive)
    pixels: int
    fill: float  # pixels / bounding-box area
    mean_rgb: tuple[float, float, float]

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def position(self) -> str:
        return position_name(self.center)

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Judgement:
    correct: bool
    reason: str  # why not (or "ok")
    objects: tuple[Detected, ...]


def judge_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """The image as a [64, 64, 3] uint8 array, resized as the module docstring says."""
    if isinstance(image, np.ndarray):
        array = np.asarray(image)
        if array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and array.dtype == np.uint8:
            return array
        image = Image.fromarray(array.astype(np.uint8))
    image = image.convert("RGB")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        enlarging = max(image.size) <= IMAGE_SIZE
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.NEAREST if enlarging else Image.BOX)
    return np.asarray(image, dtype=np.uint8)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: (row, start, end exclusive), in row-major order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows, starts, ends


def _label_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, height: int) -> tuple[np.ndarray, int]:
    """Component label (0..k-1) of every run: runs on adjacent rows that share a column join."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(height + 1)).tolist()
    s, e = starts.tolist(), ends.tolist()
    for r in range(1, height):
        i, i_end, j, j_end = first[r - 1], first[r], first[r], first[r + 1]
        while i < i_end and j < j_end:  # merge-walk the two rows' runs
            if s[i] < e[j] and s[j] < e[i]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(len(rows))], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.reshape(-1), int(labels.max()) + 1 if len(labels) else 0


def classify_shape(fill: float) -> str:
    return "square" if fill > SQUARE_FILL else "circle" if fill >= CIRCLE_FILL else "triangle"


def detect(image: Image.Image | np.ndarray) -> tuple[Detected, ...]:
    """The objects of an image, ordered top to bottom, then left to right."""
    array = judge_array(image)
    height, width, _ = array.shape
    distance = np.sqrt(((255.0 - array.astype(np.float64)) ** 2).sum(axis=-1))
    rows, starts, ends = _runs(distance > WHITE_DISTANCE)
    if len(rows) == 0:
        return ()
    labels, k = _label_runs(rows, starts, ends, height)
    lengths = ends - starts
    pixels = np.bincount(labels, weights=lengths, minlength=k).astype(np.int64)
    left = np.full(k, width)
    np.minimum.at(left, labels, starts)
    right = np.full(k, -1)
    np.maximum.at(right, labels, ends - 1)
    top = np.full(k, height)
    np.minimum.at(top, labels, rows)
    bottom = np.full(k, -1)
    np.maximum.at(bottom, labels, rows)
    sums = np.zeros((height, width + 1, 3))
    np.cumsum(array, axis=1, dtype=np.float64, out=sums[:, 1:])
    run_rgb = sums[rows, ends] - sums[rows, starts]
    rgb = np.stack([np.bincount(labels, weights=run_rgb[:, c], minlength=k) for c in range(3)], axis=1)
    found = []
    for label in np.nonzero(pixels >= MIN_PIXELS)[0]:
        mean = rgb[label] / pixels[label]
        color = _PALETTE_NAMES[int(np.argmin(((_PALETTE_RGB - mean) ** 2).sum(axis=1)))]
        w, h = int(right[label] - left[label] + 1), int(bottom[label] - top[label] + 1)
        fill = float(pixels[label]) / (w * h)
        found.append(Detected(
            color, classify_shape(fill), "large" if max(w, h) >= LARGE_SIDE else "small",
            (int(left[label]), int(top[label]), int(right[label]), int(bottom[label])),
            int(pixels[label]), fill, (float(mean[0]), float(mean[1]), float(mean[2])),
        ))
    return tuple(sorted(found, key=lambda d: (d.box[1], d.box[0])))


def scene_from_image(image: Image.Image | np.ndarray) -> Scene | None:
    """The scene an image renders, if it is an exact render of a valid scene, else None."""
    objs = []
    for d in detect(image):
        x0, y0, x1, y1 = d.box
        side = x1 - x0 + 1
        size = {v: k for k, v in SIZES.items()}.get(side)
        if size is None or y1 - y0 + 1 != side or d.mean_rgb != tuple(float(v) for v in PALETTE[d.color]):
            return None
        objs.append(Obj(d.color, d.shape, size, x0, y0))
    try:
        return Scene(tuple(objs))
    except ValueError:
        return None


def _matching(objects: Sequence[Detected], color: str, shape: str) -> list[Detected]:
    return [o for o in objects if o.color == color and o.shape == shape]


def _names(objects: Sequence[Detected]) -> str:
    return ", ".join(f"{o.size} {o.name} in the {o.position}" for o in objects) or "nothing"


def judge(spec: PromptSpec, image: Image.Image | np.ndarray | Sequence[Detected]) -> Judgement:
    """Whether an image is a correct answer to a prompt, by the rule of the prompt's category."""
    objects = tuple(image) if isinstance(image, (list, tuple)) else detect(image)  # type: ignore[arg-type]
    category = spec.category
    found = f"found {_names(objects)}"

    def verdict(ok: bool) -> Judgement:
        return Judgement(ok, "ok" if ok else found, objects)

    if category in ("single_object", "colors"):
        want = spec.objects[0]
        if len(objects) != 1:
            return verdict(False)
        o = objects[0]
        if category == "colors":
            return verdict(o.color == want.color)
        return verdict(
            (o.color, o.shape) == (want.color, want.shape)
            and want.size in (None, o.size) and want.position in (None, o.position)
        )
    if category == "counting":
        want = spec.objects[0]
        return verdict(len(objects) == spec.count and len(_matching(objects, want.color, want.shape)) == spec.count)
    if category in ("two_objects", "color_attribution", "position"):
        a, b = spec.objects
        firsts, seconds = _matching(objects, a.color, a.shape), _matching(objects, b.color, b.shape)
        if category != "position":
            return verdict(bool(firsts) and bool(seconds))  # named objects differ, so they are distinct
        assert spec.relation is not None
        return verdict(any(relation_holds(spec.relation, p.center, q.center) for p in firsts for q in seconds))
    raise ValueError(f"unknown ShapesEval category {category!r}; one of {', '.join(CATEGORIES)}")


judge_image = judge  # the same function, under a name that does not clash with this module's
