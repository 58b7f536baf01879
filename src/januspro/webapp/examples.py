"""Example inputs for the web app, made at start-up so that they work offline.

The images are scenes of the bundled model's world: white 64x64 pictures with red, green,
blue, yellow, purple and orange circles, squares and triangles.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLORS = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220),
    "yellow": (235, 200, 20), "purple": (140, 50, 170), "orange": (245, 130, 20),
}
SIZE = 64

# (file name, shapes as (kind, colour, centre x, centre y, radius), question)
UNDERSTANDING = [
    ("red-circle-blue-square.png", [("circle", "red", 18, 32, 10), ("square", "blue", 46, 32, 10)],
     "Describe the image."),
    ("three-shapes.png", [("triangle", "green", 16, 18, 9), ("square", "yellow", 46, 20, 9), ("circle", "purple", 32, 46, 10)],
     "How many shapes are there?"),
    ("orange-circle.png", [("circle", "orange", 32, 32, 16)], "What color is the circle?"),
]

GENERATION = [
    "a red circle to the left of a blue square",
    "three green triangles",
    "a large yellow square in the top left",
    "a purple circle above an orange triangle",
]


def draw_scene(shapes: list[tuple[str, str, int, int, int]], size: int = SIZE) -> Image.Image:
    """A white scene with the given shapes: (kind, colour, centre x, centre y, radius)."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for kind, colour, x, y, r in shapes:
        fill = COLORS[colour]
        if kind == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif kind == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        elif kind == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
        else:
            raise ValueError(f"unknown shape {kind!r}")
    return image


def write_examples(folder: Path) -> list[list[str]]:
    """Draw the understanding examples into `folder`; returns [image path, question] rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, shapes, question in UNDERSTANDING:
        path = folder / name
        draw_scene(shapes).save(path)
        rows.append([str(path), question])
    return rows
