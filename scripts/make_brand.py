"""Draw Retrovue's brand images into custom_components/retrovue/brand/.

    .venv/bin/python scripts/make_brand.py

The mark is a film frame (amber, with dark sprocket holes along the top and bottom) whose
window is a card-catalog drawer: a label holder and a pull. The logo runs the same film strip
sideways and adds the word "Retrovue" in a second window. Only shapes and Pillow's built-in
font are used (`ImageFont.load_default(size=...)`, Pillow >= 10.1), so the output is the same
on every machine with the same Pillow version. Everything is drawn 4x larger and scaled down
for smooth edges, then trimmed to the drawn pixels.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

AMBER = (0xE5, 0xA0, 0x0D, 255)
DARK = (0x1F, 0x1F, 0x1F, 255)
SUPERSAMPLE = 4
ICON_SIZE = 256  # icon.png; icon@2x.png is twice that
LOGO_HEIGHT = 256  # logo.png; logo@2x.png is twice that
LOGO_MAX_WIDTH = 512
WORD = "Retrovue"
BRAND_DIR = Path(__file__).resolve().parent.parent / "custom_components" / "retrovue" / "brand"

# Proportions, as fractions of the strip's height.
CORNER = 0.16  # outer corner radius
SPROCKET_BAND = 0.22  # height of the sprocket band at the top and at the bottom
SPROCKET_W = 0.085
SPROCKET_H = 0.085
SPROCKET_PITCH = 0.19  # distance between the centers of two sprocket holes
MARGIN = 0.08  # between the strip's sides and a window, and between windows
WINDOW_CORNER = 0.05


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    return round(x0), round(y0), round(x1), round(y1)


def _sprockets(draw: ImageDraw.ImageDraw, width: float, height: float) -> None:
    """Punch a row of sprocket holes into the top band and one into the bottom band."""
    count = max(2, int((width - 2 * MARGIN * height) / (SPROCKET_PITCH * height)) + 1)
    pitch = SPROCKET_PITCH * height
    first = (width - (count - 1) * pitch) / 2
    hole_w, hole_h = SPROCKET_W * height, SPROCKET_H * height
    band = SPROCKET_BAND * height
    for index in range(count):
        cx = first + index * pitch
        for cy in (band / 2, height - band / 2):
            draw.rounded_rectangle(
                _box(cx - hole_w / 2, cy - hole_h / 2, cx + hole_w / 2, cy + hole_h / 2),
                radius=round(hole_h * 0.3),
                fill=DARK,
            )


def _drawer(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float) -> None:
    """Draw a dark window holding a catalog drawer front: a label holder above a pull."""
    height = y1 - y0
    draw.rounded_rectangle(
        _box(x0, y0, x1, y1), radius=round(WINDOW_CORNER * height / 0.56), fill=DARK
    )
    cx = (x0 + x1) / 2
    width = x1 - x0
    # Label holder: an amber outline with a card line inside.
    line = max(1.0, 0.055 * height)
    label = _box(cx - 0.26 * width, y0 + 0.16 * height, cx + 0.26 * width, y0 + 0.46 * height)
    draw.rounded_rectangle(label, radius=round(line), outline=AMBER, width=round(line))
    draw.rounded_rectangle(
        _box(
            cx - 0.15 * width,
            y0 + 0.29 * height,
            cx + 0.15 * width,
            y0 + 0.29 * height + line,
        ),
        radius=round(line / 2),
        fill=AMBER,
    )
    # Pull: a solid amber bar.
    draw.rounded_rectangle(
        _box(cx - 0.2 * width, y0 + 0.62 * height, cx + 0.2 * width, y0 + 0.8 * height),
        radius=round(0.09 * height),
        fill=AMBER,
    )


def _strip(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """Return a transparent canvas holding an amber film strip with its sprocket holes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=round(CORNER * height), fill=AMBER)
    _sprockets(draw, width, height)
    return image, draw


def _window_rows(height: float) -> tuple[float, float]:
    band = SPROCKET_BAND * height
    return band, height - band


def draw_icon(size: int) -> Image.Image:
    """Return the square mark, `size` pixels wide."""
    big = size * SUPERSAMPLE
    image, draw = _strip(big, big)
    top, bottom = _window_rows(big)
    _drawer(draw, MARGIN * big, top, big - MARGIN * big, bottom)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _font(height: float) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=max(1, round(height)))
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise SystemExit("Pillow needs FreeType support to draw the logo's text")
    return font


def draw_logo(height: int, max_width: int) -> Image.Image:
    """Return the film strip with the drawer window and the word, `height` pixels tall."""
    big_h = height * SUPERSAMPLE
    big_w = max_width * SUPERSAMPLE
    top, bottom = _window_rows(big_h)
    window_h = bottom - top
    drawer_w = window_h * 1.1
    margin = MARGIN * big_h
    text_x0 = margin + drawer_w + margin
    text_x1 = big_w - margin
    # The largest font whose word fits the second window with some air around it.
    room_w = (text_x1 - text_x0) * 0.88
    room_h = window_h * 0.5
    size = room_h / 0.71  # Aileron's capitals are about 0.71 of the font size
    font = _font(size)
    left, cap_top, right, base = font.getbbox(WORD)
    if right - left > room_w:
        size *= room_w / (right - left)
        font = _font(size)
        left, cap_top, right, base = font.getbbox(WORD)

    image, draw = _strip(big_w, big_h)
    _drawer(draw, margin, top, margin + drawer_w, bottom)
    draw.rounded_rectangle(
        _box(text_x0, top, text_x1, bottom),
        radius=round(WINDOW_CORNER * window_h / 0.56),
        fill=DARK,
    )
    text_w, text_h = right - left, base - cap_top
    x = (text_x0 + text_x1 - text_w) / 2 - left
    y = (top + bottom - text_h) / 2 - cap_top
    stroke = max(1, round(size * 0.02))
    draw.text((x, y), WORD, font=font, fill=AMBER, stroke_width=stroke, stroke_fill=AMBER)
    return image.resize((max_width, height), Image.Resampling.LANCZOS)


def trim(image: Image.Image) -> Image.Image:
    """Crop away fully transparent rows and columns at the edges."""
    bbox = image.getchannel("A").getbbox()
    return image if bbox is None else image.crop(bbox)


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    images = {
        "icon.png": draw_icon(ICON_SIZE),
        "icon@2x.png": draw_icon(ICON_SIZE * 2),
        "logo.png": draw_logo(LOGO_HEIGHT, LOGO_MAX_WIDTH),
        "logo@2x.png": draw_logo(LOGO_HEIGHT * 2, LOGO_MAX_WIDTH * 2),
    }
    for name, image in images.items():
        trimmed = trim(image)
        if trimmed.size != image.size:
            raise SystemExit(f"{name}: the drawing does not fill its canvas {image.size}")
        path = BRAND_DIR / name
        trimmed.save(path, format="PNG", optimize=True)
        print(f"{path.relative_to(BRAND_DIR.parents[2])}: {trimmed.width}x{trimmed.height}")


if __name__ == "__main__":
    main()
