"""Generated photo-like image folders: the demo data set, test data and benchmark data.

Each class is a kind of object (circles, squares, triangles, ...) drawn 1-3 times with random size,
colour, rotation and fill over cluttered, noisy gradient backgrounds, saved as JPEG like phone photos.
Nothing is downloaded: the studio must train something real with no network.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circles", "squares", "triangles", "stars", "crosses")


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "squares":
        points = [(math.cos(angle + k * math.pi / 2 + math.pi / 4), math.sin(angle + k * math.pi / 2 + math.pi / 4))
                  for k in range(4)]
    elif kind == "triangles":
        points = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif kind == "stars":
        points = [((1.0 if k % 2 == 0 else 0.45) * math.cos(angle + k * math.pi / 5),
                   (1.0 if k % 2 == 0 else 0.45) * math.sin(angle + k * math.pi / 5)) for k in range(10)]
    elif kind == "crosses":
        w = 0.33
        base = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                (-w, -w)]
        points = [(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle))
                  for x, y in base]
    else:
        raise ValueError(kind)
    return [(cx + r * x, cy + r * y) for x, y in points]


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(0, 255) for _ in range(3))  # type: ignore[return-value]


def render(kind: str, size: tuple[int, int], rng: random.Random) -> Image.Image:
    width, height = size
    a, b = _colour(rng), _colour(rng)
    gradient = Image.linear_gradient("L").resize((width, height)).rotate(rng.uniform(0, 360), expand=False)
    image = Image.composite(Image.new("RGB", size, a), Image.new("RGB", size, b), gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 9)):  # clutter: lines and small blobs
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:
            draw.line([(x0, y0), (rng.uniform(0, width), rng.uniform(0, height))], fill=_colour(rng),
                      width=rng.randint(1, 4))
        else:
            r = rng.uniform(2, min(size) * 0.05)
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=_colour(rng))
    for _ in range(rng.randint(1, 3)):
        r = rng.uniform(0.12, 0.3) * min(size)
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        fill = _colour(rng) if rng.random() < 0.8 else None
        outline = _colour(rng)
        line = rng.randint(2, 6)
        if kind == "circles":
            ry = r * rng.uniform(0.85, 1.0)
            draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=fill, outline=outline, width=line)
        else:
            draw.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fill, outline=outline,
                         width=line)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    noise = Image.effect_noise(size, rng.uniform(5, 25)).convert("RGB")
    return Image.blend(image, noise, 0.12)


def make_image_folder(root: str | Path, classes: tuple[str, ...] = SHAPES[:3], per_class: int = 30,
                      size: tuple[int, int] = (160, 120), seed: int = 0, quality: int = 88,
                      layout: str = "flat", val_per_class: int = 0) -> Path:
    """Write `root/<class>/<n>.jpg` (layout 'flat') or `root/train|val/<class>/...` (layout 'split').

    A class named after a shape draws that shape; other names take the shapes in order.
    """
    root = Path(root)
    rng = random.Random(seed)
    for number, kind in enumerate(classes):
        shape = kind if kind in SHAPES else SHAPES[number % len(SHAPES)]  # any class name gets a shape
        for index in range(per_class + val_per_class):
            if layout == "split":
                split = "val" if index >= per_class else "train"
                folder = root / split / kind
            else:
                folder = root / kind
            folder.mkdir(parents=True, exist_ok=True)
            render(shape, size, rng).save(folder / f"{kind}_{index:04d}.jpg", quality=quality)
    return root


if __name__ == "__main__":  # regenerate resources/demo
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "resources" / "demo"
    make_image_folder(target / "shapes", classes=SHAPES[:3], per_class=40, size=(192, 144), seed=2024)
    print(f"wrote {target / 'shapes'}")
