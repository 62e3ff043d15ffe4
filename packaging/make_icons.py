"""Draws the application icon (a small neural network over stacked layers) and writes PNG, ICO and ICNS.

    .venv/bin/python packaging/make_icons.py      # writes resources/icons/tlstudio.{png,ico,icns}

Drawn at 4x and scaled down for smooth edges; deterministic, so re-running gives the same files.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "icons"
SIZE = 512
SCALE = 4


def _vertical_gradient(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return column.resize((size, size))


def draw_icon(size: int = SIZE) -> Image.Image:
    s = size * SCALE
    unit = s / 64  # a 64-unit design grid

    background = _vertical_gradient(s, (32, 84, 196), (18, 160, 170))
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([2 * unit, 2 * unit, 62 * unit, 62 * unit], radius=13 * unit, fill=255)
    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    icon.paste(background, (0, 0), mask)
    overlay = Image.new("RGBA", (s, s), (0, 0, 0, 0))  # translucent parts blend over the background
    draw = ImageDraw.Draw(overlay)

    # Stacked layers behind the network: the pretrained backbone the studio builds on.
    for i, alpha in enumerate((60, 90, 120)):
        y = (44 + 4.2 * i) * unit
        draw.rounded_rectangle([12 * unit, y, 52 * unit, y + 2.6 * unit], radius=1.3 * unit,
                               fill=(255, 255, 255, alpha))

    # The network: 3 inputs -> 4 hidden -> 2 outputs; the new head (the last layer) in a warm colour.
    layers = [(15.0, (14.0, 24.0, 34.0)), (32.0, (10.0, 18.5, 27.0, 35.5)), (49.0, (18.5, 29.5))]
    nodes = [[(x * unit, y * unit) for y in ys] for x, ys in layers]
    for left, right, colour in ((nodes[0], nodes[1], (255, 255, 255, 150)), (nodes[1], nodes[2], (255, 200, 90, 230))):
        for a in left:
            for b in right:
                draw.line([a, b], fill=colour, width=round(1.1 * unit))
    icon = Image.alpha_composite(icon, overlay)
    draw = ImageDraw.Draw(icon)
    radius = 3.3 * unit
    for index, layer in enumerate(nodes):
        fill = (255, 184, 64) if index == 2 else (255, 255, 255)
        for x, y in layer:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill, outline=(20, 50, 110),
                         width=round(0.9 * unit))
    return icon.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    icon = draw_icon(SIZE)
    icon.save(OUT / "tlstudio.png", optimize=True)
    icon.save(OUT / "tlstudio.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    draw_icon(1024).save(OUT / "tlstudio.icns")
    for name in ("tlstudio.png", "tlstudio.ico", "tlstudio.icns"):
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
