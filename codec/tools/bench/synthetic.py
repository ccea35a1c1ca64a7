"""Synthetic hard cases for the fidelity guard (issue 5), rendered with Pillow by code.

Generative latent codecs fail first on text, thin line art and faces: the decoder invents plausible
strokes instead of the real ones. Kodak has almost no text, so the fidelity bench adds these images.
Everything is deterministic (fixed seeds, Pillow's bundled font via ``ImageFont.load_default(size)``),
so the same Pillow version renders the same pixels on every machine.

* ``text`` – paragraphs at 8, 10, 12, 14, 18, 24 and 32 px, dark on light, light on dark and
  coloured on coloured, on a slightly textured paper background;
* ``text_on_photo`` – a caption and a street-sign-like panel over a smooth, noisy "photo" background;
* ``line_art`` – 1–3 px lines: hatching, a grid, concentric circles, a star of rays, a small plan;
* ``faces`` – face-like high-contrast patterns (skin ellipse, eyes with iris/pupil/highlight, brows,
  nose shadow, mouth with teeth) at three sizes.

``python -m codec.tools.bench.synthetic OUT_DIR`` writes them as PNG.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 768, 512
TEXT = (
    "The quick brown fox jumps over the lazy dog 0123456789. "
    "Pack my box with five dozen liquor jugs; sphinx of black quartz, judge my vow! "
)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _paper(w: int, h: int, seed: int, base: tuple[int, int, int] = (244, 240, 228)) -> Image.Image:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 3.0, (h, w, 1))
    shade = np.linspace(-6, 6, w)[None, :, None]
    arr = np.clip(np.array(base, dtype=np.float64)[None, None] + noise + shade, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def text_case(w: int = WIDTH, h: int = HEIGHT) -> np.ndarray:
    img = _paper(w, h, seed=1)
    d = ImageDraw.Draw(img)
    y = 8
    for size in (8, 10, 12, 14, 18, 24, 32):
        font = _font(size)
        for line in _wrap(d, TEXT * 2, font, w - 24)[: 2 if size < 24 else 1]:
            d.text((12, y), line, fill=(20, 20, 24), font=font)
            y += int(size * 1.3)
        y += 4
    if y > h - 40:  # a small canvas: the paragraphs fill it
        return np.asarray(img)
    # light on dark and coloured on coloured panels
    panels = [((0, 0, 0), (250, 250, 250)), ((20, 60, 140), (255, 220, 60)), ((180, 30, 30), (240, 240, 240))]
    pw = (w - 16) // 3
    for i, (bg, fg) in enumerate(panels):
        x0 = 8 + i * pw
        d.rectangle((x0, y, x0 + pw - 8, h - 8), fill=bg)
        font = _font(12 + 4 * i)
        yy = y + 6
        for line in _wrap(d, TEXT, font, pw - 24):
            if yy + 16 + 4 * i > h - 10:
                break
            d.text((x0 + 8, yy), line, fill=fg, font=font)
            yy += int((12 + 4 * i) * 1.3)
    return np.asarray(img)


def text_on_photo_case(w: int = WIDTH, h: int = HEIGHT) -> np.ndarray:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([90 + 60 * yy / h, 140 + 50 * yy / h, 200 - 40 * yy / h], axis=-1)
    hills = (yy > h * 0.55 + 30 * np.sin(xx / 70.0))[..., None]
    ground = np.stack([60 + 20 * np.sin(xx / 13.0), 110 + 15 * np.cos(yy / 9.0), 50 + 0 * xx], axis=-1)
    arr = np.where(hills, ground, sky) + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    # a street sign: white on green with a border
    d.rounded_rectangle((40, 40, 400, 150), radius=10, fill=(20, 110, 60), outline=(250, 250, 250), width=4)
    d.text((60, 55), "Main Street 12", fill=(250, 250, 250), font=_font(36))
    d.text((60, 105), "Exit 7B  ->  Airport 18 km", fill=(250, 250, 250), font=_font(20))
    # a caption strip at the bottom
    d.rectangle((0, h - 70, w, h), fill=(10, 10, 10))
    d.text((16, h - 62), "Photo: Lake shore, 14 May 2023, 07:42 - f/8, 1/250 s, ISO 100",
           fill=(235, 235, 235), font=_font(16))
    d.text((16, h - 34), "Small print: (c) The Example Photo Agency, licence CC-BY 4.0, ref #A-5521-x",
           fill=(200, 200, 200), font=_font(11))
    # a license plate
    d.rectangle((520, 250, 720, 300), fill=(240, 240, 230), outline=(20, 20, 20), width=3)
    d.text((538, 258), "KA 47 19Z", fill=(15, 15, 15), font=_font(30))
    return np.asarray(img)


def line_art_case(w: int = WIDTH, h: int = HEIGHT) -> np.ndarray:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    ink = (0, 0, 0)
    # hatching with decreasing spacing
    for i, step in enumerate((8, 6, 4, 3)):
        x0 = 10 + i * 60
        for k in range(0, 120, step):
            d.line((x0, 10 + k, x0 + 50, 10 + k), fill=ink, width=1)
    # diagonal hatching
    for k in range(-120, 120, 5):
        d.line((260 + k, 10, 380 + k, 130), fill=ink, width=1)
    d.rectangle((255, 5, 385, 135), outline=(255, 255, 255), width=8)
    # grid
    for k in range(0, 121, 10):
        d.line((400 + k, 10, 400 + k, 130), fill=(40, 40, 200), width=1)
        d.line((400, 10 + k, 520, 10 + k), fill=(40, 40, 200), width=1)
    # concentric circles
    for r in range(4, 70, 5):
        d.ellipse((640 - r, 75 - r, 640 + r, 75 + r), outline=ink, width=1 if r % 2 else 2)
    # star of rays
    cx, cy = 130, 330
    for a in np.linspace(0, np.pi, 36, endpoint=False):
        dx, dy = 110 * np.cos(a), 110 * np.sin(a)
        d.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=ink, width=1)
    # a little floor plan with labels
    d.rectangle((280, 180, 740, 490), outline=ink, width=3)
    d.line((480, 180, 480, 400), fill=ink, width=2)
    d.line((280, 330, 480, 330), fill=ink, width=2)
    d.line((480, 400, 740, 400), fill=ink, width=2)
    d.arc((440, 290, 520, 370), 180, 270, fill=ink, width=1)
    for (x, y, label) in ((320, 240, "Kitchen 12 m2"), (320, 400, "Bath"), (560, 280, "Living room 31 m2"),
                          (560, 440, "Hall")):
        d.text((x, y), label, fill=ink, font=_font(14))
    for k in range(300, 470, 12):  # stairs
        d.line((k, 460, k, 485), fill=ink, width=1)
    return np.asarray(img)


def _face(d: ImageDraw.ImageDraw, cx: int, cy: int, s: float, skin: tuple[int, int, int]) -> None:
    d.ellipse((cx - 60 * s, cy - 80 * s, cx + 60 * s, cy + 80 * s), fill=skin, outline=(60, 30, 20),
              width=max(1, round(2 * s)))
    d.chord((cx - 64 * s, cy - 92 * s, cx + 64 * s, cy - 10 * s), 180, 360, fill=(35, 25, 20))  # hair
    for side in (-1, 1):
        ex = cx + side * 24 * s
        ey = cy - 12 * s
        d.line((ex - 16 * s, ey - 20 * s, ex + 16 * s, ey - 24 * s + side * 2 * s), fill=(40, 25, 15),
               width=max(1, round(4 * s)))  # brow
        d.ellipse((ex - 15 * s, ey - 8 * s, ex + 15 * s, ey + 8 * s), fill=(250, 250, 250),
                  outline=(30, 20, 20), width=max(1, round(s)))
        d.ellipse((ex - 7 * s, ey - 7 * s, ex + 7 * s, ey + 7 * s), fill=(70, 110, 60))  # iris
        d.ellipse((ex - 3 * s, ey - 3 * s, ex + 3 * s, ey + 3 * s), fill=(5, 5, 5))  # pupil
        d.ellipse((ex + 1 * s, ey - 4 * s, ex + 3 * s, ey - 2 * s), fill=(255, 255, 255))  # highlight
    d.polygon([(cx, cy - 5 * s), (cx - 10 * s, cy + 22 * s), (cx + 6 * s, cy + 24 * s)],
              fill=tuple(max(0, c - 45) for c in skin))  # nose shadow
    d.chord((cx - 26 * s, cy + 28 * s, cx + 26 * s, cy + 58 * s), 0, 180, fill=(150, 30, 40))  # mouth
    d.rectangle((cx - 18 * s, cy + 43 * s, cx + 18 * s, cy + 49 * s), fill=(245, 245, 240))  # teeth
    for k in range(-3, 4):
        d.line((cx + k * 5 * s, cy + 43 * s, cx + k * 5 * s, cy + 49 * s), fill=(150, 140, 130), width=1)


def faces_case(w: int = WIDTH, h: int = HEIGHT) -> np.ndarray:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = np.stack([120 + 40 * np.sin(xx / 50.0), 100 + 30 * np.cos(yy / 40.0), 90 + 0 * xx], axis=-1)
    img = Image.fromarray(np.clip(bg + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    _face(d, 170, 260, 2.2, (230, 185, 150))
    _face(d, 450, 200, 1.1, (140, 95, 70))
    _face(d, 620, 330, 0.6, (250, 210, 180))
    _face(d, 700, 120, 0.35, (200, 150, 120))
    # a checkerboard collar, high contrast
    for i in range(12):
        for j in range(3):
            if (i + j) % 2 == 0:
                d.rectangle((80 + i * 15, 450 + j * 15, 94 + i * 15, 464 + j * 15), fill=(10, 10, 10))
    return np.asarray(img)


CASES: dict[str, Callable[..., np.ndarray]] = {
    "text": text_case,
    "text_on_photo": text_on_photo_case,
    "line_art": line_art_case,
    "faces": faces_case,
}


def make_cases(w: int = WIDTH, h: int = HEIGHT) -> dict[str, np.ndarray]:
    """All synthetic cases as (h, w, 3) uint8 RGB arrays, by name."""
    return {name: fn(w, h) for name, fn in CASES.items()}


def write_cases(out_dir: str | Path, w: int = WIDTH, h: int = HEIGHT) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in make_cases(w, h).items():
        p = out / f"synthetic_{name}.png"
        Image.fromarray(rgb, "RGB").save(p)
        paths.append(p)
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in write_cases(sys.argv[1] if len(sys.argv) > 1 else "synthetic"):
        print(p)
