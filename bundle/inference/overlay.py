"""The overlay montage: target slices with the mask and the box drawn, captioned with the answer.

Tiles are shown in the radiological view of a RAS slice (transposed and flipped both ways, so an
axial tile has anterior up and the patient's right on the left) and scaled to their physical
aspect from the voxel spacing.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

TILE_SIZE = 192
"""Longest side of a tile, in pixels."""
MAX_TILES = 16
EMPTY_TILES = 4
"""Evenly spaced slices shown when no slice holds the target."""
MAX_COLUMNS = 4
GAP = 4
MARGIN = 6
FONT_SIZE = 14
MASK_COLOUR = np.array([255.0, 48.0, 48.0])
MASK_ALPHA = 0.45
BOX_COLOUR = (255, 215, 0)
BOX_WIDTH = 2
TEXT_COLOUR = (255, 255, 255)
BACKGROUND = (0, 0, 0)
GREY_LEVELS = 255
RADIOLOGICAL_VIEW = Image.Transpose.TRANSVERSE
"""Transpose plus 180-degree rotation: a RAS slice's (rows R, columns A) -> (rows A..P, columns R..L)."""


def choose_tiles(target_indices: Sequence[int], num_slices: int) -> list[int]:
    """Slices to show: the target slices (at most :data:`MAX_TILES`, evenly picked), else a few evenly spaced ones."""
    if target_indices:
        picks = np.linspace(0, len(target_indices) - 1, min(len(target_indices), MAX_TILES))
        return sorted({int(target_indices[round(p)]) for p in picks})
    # interior points only: the first and last slices are often outside the body
    positions = np.linspace(0, num_slices - 1, EMPTY_TILES + 2)[1:-1]
    return sorted({int(round(p)) for p in positions})


def display_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A normalised xyxy slice box in the :data:`RADIOLOGICAL_VIEW` frame (new x = 1 - y, new y = 1 - x)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return 1.0 - y1, 1.0 - x1, 1.0 - y0, 1.0 - x0


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters replaced by spaces (fonts cannot draw them)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


class TileRenderer:
    """Draws one slice: grey image, translucent mask, box outline and a label.

    Args:
        spacing: (row, column) pixel spacing of the slice in mm, for the tile's aspect ratio.
    """

    def __init__(self, spacing: tuple[float, float]) -> None:
        self.spacing = spacing
        self.font = ImageFont.load_default(size=FONT_SIZE)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, box: torch.Tensor | None, label: str) -> Image.Image:
        """A tile for an (H, W) image in [0, 1] and its (H, W) mask; ``box`` is normalised xyxy or None."""
        tile = self.blend(image, mask).transpose(RADIOLOGICAL_VIEW)
        tile = tile.resize(self.tile_size(*image.shape), Image.Resampling.BILINEAR)
        self.annotate(tile, box, label)
        return tile

    @staticmethod
    def blend(image: torch.Tensor, mask: torch.Tensor) -> Image.Image:
        """The grey image with the mask blended in, in slice orientation."""
        rgb = np.repeat(image.float().clamp(0.0, 1.0).cpu().numpy()[..., None] * GREY_LEVELS, 3, axis=2)
        inside = mask.bool().cpu().numpy()
        rgb[inside] = (1.0 - MASK_ALPHA) * rgb[inside] + MASK_ALPHA * MASK_COLOUR
        return Image.fromarray(np.round(rgb).astype(np.uint8))

    def annotate(self, tile: Image.Image, box: torch.Tensor | None, label: str) -> None:
        """Draws the box (normalised xyxy in slice orientation) and the label on a displayed tile, in place."""
        draw = ImageDraw.Draw(tile)
        if box is not None:
            x0, y0, x1, y1 = display_box(box.tolist())
            width, height = tile.size
            corners = [x0 * width, y0 * height, x1 * width - 1, y1 * height - 1]  # PIL's rectangle includes its end
            draw.rectangle(corners, outline=BOX_COLOUR, width=BOX_WIDTH)
        draw.text((MARGIN, MARGIN), label, fill=TEXT_COLOUR, font=self.font)

    def tile_size(self, height: int, width: int) -> tuple[int, int]:
        """(width, height) in pixels of the displayed tile (the view swaps the slice's axes)."""
        shown_width, shown_height = height * self.spacing[0], width * self.spacing[1]
        scale = TILE_SIZE / max(shown_width, shown_height)
        return max(1, round(shown_width * scale)), max(1, round(shown_height * scale))


def compose_montage(tiles: Sequence[Image.Image], caption: str) -> Image.Image:
    """Tiles in a grid of at most :data:`MAX_COLUMNS` columns under a wrapped caption."""
    columns = min(len(tiles), MAX_COLUMNS)
    rows = math.ceil(len(tiles) / columns)
    cell_width = max(t.size[0] for t in tiles) + GAP
    cell_height = max(t.size[1] for t in tiles) + GAP
    font = ImageFont.load_default(size=FONT_SIZE)
    width = columns * cell_width + GAP
    lines = wrap(printable(caption), font, width - 2 * MARGIN)
    line_height = font.getbbox("Ag")[3] + GAP
    top = 2 * MARGIN + len(lines) * line_height
    montage = Image.new("RGB", (width, top + rows * cell_height + GAP), BACKGROUND)
    draw = ImageDraw.Draw(montage)
    for number, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + number * line_height), line, fill=TEXT_COLOUR, font=font)
    for number, tile in enumerate(tiles):
        row, column = divmod(number, columns)
        montage.paste(tile, (GAP + column * cell_width, top + row * cell_height))
    return montage


def wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (by the font's average character width)."""
    average = max(font.getlength("abcdefghijklmnopqrstuvwxyz") / 26, 1.0)
    return textwrap.wrap(text, width=max(int(width / average), 1)) or [""]
