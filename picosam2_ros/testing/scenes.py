"""Synthetic scenes with exact ground truth: flat coloured shapes on a flat background.

Together with the colour-match model they make segmentation deterministic, so a test
can tell a correct paste-back from a shifted, mirrored or transposed one. Objects from
``random_scene`` are deliberately not square (a width/height swap changes the mask) and
not symmetric where that matters (the L shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Shape = Literal["rect", "ellipse", "L"]

#: Saturated RGB colours, pairwise far apart and far from the default background, so the
#: colour-match model (tolerance 0.6) never confuses two objects or object and background.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),
    (40, 200, 60),
    (50, 80, 230),
    (230, 210, 40),
    (210, 50, 200),
    (40, 210, 210),
    (240, 240, 240),
    (140, 90, 20),
)


@dataclass
class SceneObject:
    """One shape inside the box [x, x + width) x [y, y + height), in RGB ``colour``."""

    shape: Shape
    colour: tuple[int, int, int]
    x: int
    y: int
    width: int
    height: int


def shape_mask(obj: SceneObject, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of the shape alone (ignoring occlusion)."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    x0, y0, w, h = obj.x, obj.y, obj.width, obj.height
    if obj.shape == "rect":
        canvas[max(0, y0) : max(0, y0 + h), max(0, x0) : max(0, x0 + w)] = 1
    elif obj.shape == "ellipse":
        # The ellipse inscribed in the box, rasterised by pixel centres.
        yy, xx = np.mgrid[0:height, 0:width]
        cx, cy = x0 + (w - 1) / 2.0, y0 + (h - 1) / 2.0
        inside = ((xx - cx) / (w / 2.0)) ** 2 + ((yy - cy) / (h / 2.0)) ** 2 <= 1.0
        canvas[inside] = 1
    elif obj.shape == "L":
        # A vertical bar on the left over the full height plus a bar along the bottom.
        tx, ty = max(1, w // 3), max(1, h // 3)
        canvas[max(0, y0) : max(0, y0 + h), max(0, x0) : max(0, x0 + tx)] = 1
        canvas[max(0, y0 + h - ty) : max(0, y0 + h), max(0, x0) : max(0, x0 + w)] = 1
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")
    return canvas.astype(bool)


def render_scene(
    width: int,
    height: int,
    objects: Sequence[SceneObject],
    background: tuple[int, int, int] = (30, 30, 30),
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw ``objects`` in order (later ones on top) and return the (H, W, 3) uint8 RGB
    image and each object's VISIBLE mask. ``noise`` is the standard deviation of added
    Gaussian noise in grey levels."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = background
    shapes = [shape_mask(obj, width, height) for obj in objects]
    for obj, mask in zip(objects, shapes, strict=True):
        image[mask] = obj.colour
    visible = []
    for i, mask in enumerate(shapes):
        covered = np.zeros_like(mask)
        for later in shapes[i + 1 :]:
            covered |= later
        visible.append(mask & ~covered)
    if noise > 0:
        rng = np.random.default_rng(seed)
        noisy = image.astype(np.float32) + rng.normal(0.0, noise, image.shape).astype(np.float32)
        image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return image, visible


def random_scene(
    width: int, height: int, n_objects: int, seed: int, border: int = 48
) -> tuple[np.ndarray, list[SceneObject], list[np.ndarray]]:
    """A scene of ``n_objects`` non-square shapes in distinct colours, at least 12 px
    apart and ``border`` px from the frame edge. Returns (image, objects, masks).

    The default border of 48 px keeps a 96 px crop around any object pixel inside the
    frame, so point crops are never translated and the prompt stays at the crop centre
    (what a centre-prompted model such as the colour-match model needs)."""
    if n_objects > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} distinctly coloured objects, got {n_objects}")
    rng = np.random.default_rng(seed)
    gap = 12
    max_side = max(16, min(width, height) // 4)
    colours = rng.permutation(len(PALETTE))
    shapes: tuple[Shape, ...] = ("rect", "ellipse", "L")
    placed: list[SceneObject] = []
    for i in range(n_objects):
        for _ in range(1000):
            w = int(rng.integers(14, max_side + 1))
            h = int(rng.integers(14, max_side + 1))
            if abs(w - h) < 6:
                continue
            if w + 2 * border > width or h + 2 * border > height:
                continue
            x = int(rng.integers(border, width - border - w + 1))
            y = int(rng.integers(border, height - border - h + 1))
            if all(
                x + w + gap <= o.x
                or o.x + o.width + gap <= x
                or y + h + gap <= o.y
                or o.y + o.height + gap <= y
                for o in placed
            ):
                shape = shapes[int(rng.integers(len(shapes)))]
                placed.append(SceneObject(shape, PALETTE[colours[i]], x, y, w, h))
                break
        else:
            raise ValueError(
                f"could not place {n_objects} separated objects in a {width}x{height} frame"
            )
    image, masks = render_scene(width, height, placed)
    return image, placed, masks


def draw_ring(
    width: int, height: int, centre: tuple[int, int], outer: int, inner: int
) -> np.ndarray:
    """A boolean ring (annulus) mask: its bbox centre is NOT on the mask, which is what
    the paper's "nearest mask pixel" prompt rule exists for."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    cv2.circle(canvas, centre, outer, 1, -1)
    cv2.circle(canvas, centre, inner, 0, -1)
    return canvas.astype(bool)
