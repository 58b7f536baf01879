"""PNG plot of the loss curves, drawn with PIL (no plotting dependency)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = {"text_loss": (37, 99, 235), "image_loss": (220, 38, 38)}


def plot_losses(csv_path: Path, png_path: Path, width: int = 900, height: int = 420) -> None:
    """Text and image loss against the global step (stages one after another, boundaries
    marked), on a log-scaled y axis."""
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    series: dict[str, list[tuple[int, float]]] = {key: [] for key in COLORS}
    boundaries = []
    offset, last_stage, last_step = 0, None, 0
    for row in rows:
        stage, step = int(row["stage"]), int(row["step"])
        if last_stage is not None and stage != last_stage:
            offset += last_step
            boundaries.append(offset)
        last_stage, last_step = stage, step
        for key in COLORS:
            value = float(row[key])
            if math.isfinite(value) and value > 0:
                series[key].append((offset + step, value))
    points = [p for s in series.values() for p in s]
    if not points:
        return
    x_max = max(p[0] for p in points) or 1
    y_lo = math.log10(min(p[1] for p in points))
    y_hi = math.log10(max(p[1] for p in points))
    if y_hi - y_lo < 1e-6:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    left, right, top, bottom = 60, width - 20, 20, height - 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (right - left) * step / x_max
        y = bottom - (bottom - top) * (math.log10(value) - y_lo) / (y_hi - y_lo)
        return x, y

    for exponent in range(math.floor(y_lo), math.ceil(y_hi) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if y_lo <= math.log10(value) <= y_hi:
                _, y = xy(0, value)
                draw.line([left, y, right, y], fill=(230, 230, 230))
                draw.text((5, y - 6), f"{value:g}", fill=(80, 80, 80))
    for boundary in boundaries:
        x, _ = xy(boundary, 10**y_lo)
        draw.line([x, top, x, bottom], fill=(160, 160, 160))
    for key, values in series.items():
        if len(values) > 1:
            draw.line([xy(s, v) for s, v in values], fill=COLORS[key], width=2)
    draw.text((left, bottom + 8), f"step (0 - {x_max}); stages separated by grey lines", fill=(80, 80, 80))
    for i, key in enumerate(COLORS):
        draw.text((right - 180, top + 8 + 14 * i), key.replace("_", " "), fill=COLORS[key])
    image.save(png_path)
