"""Training samples: a protocol crop of one instance, with augmentations that model
how prompts really arrive and how cameras differ.

- prompt jitter (point): the prompt moves to a random mask pixel near the paper prompt
- scale jitter (point): the native crop side varies around 96 px before the resize
- zoom (point): a window centred on a prompt anywhere on the mask (or on the paper
  prompt), sized so the object's extent fills ``zoom_min``-``zoom_max`` of it, filled
  outside the frame (``picosam2_ros.core.window``): the network learns to segment the
  centre object at any scale, which the whole-object decoding relies on; a share of
  them (``frame_windows``) is sized from the frame instead of the object, as the
  search's windows are before it knows the object's size: a large object then
  overflows the window, a small one sits in it
- box jitter (box): each box edge moves by a fraction of the box size
- copy-paste: the real masked object is cut out of its photo, rescaled and pasted onto
  another training photo, and becomes the centre object there
- horizontal flip, colour (brightness, contrast, saturation, hue), blur, noise, JPEG
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import cv2
import numpy as np

from picosam2_ros.core.box_prior import box_in_crop
from picosam2_ros.core.geometry import MODEL_INPUT_SIZE, paper_prompt_point
from picosam2_ros.core.window import Window, window_mask, window_to_model_input
from training.crops import box_roi, check_protocol, cut, point_roi, resize
from training.data import Instance, InstanceSet


@dataclass
class AugmentConfig:
    prompt_jitter: float = 0.3  # probability of moving the prompt point
    jitter_sigma: float = 0.12  # std of the move, as a fraction of the mask's box size
    scale_prob: float = 0.25  # probability of a crop side other than 96 native px
    scale_min: float = 0.75
    scale_max: float = 1.4
    box_jitter: float = 0.08  # std of each box edge move, fraction of box size
    zoom: float = 0.0  # probability of a zoom window instead of the native crop (point)
    zoom_min: float = 0.1  # object extent / window side, lower end
    zoom_max: float = 0.9  # upper end
    zoom_min_side: float = 24.0  # smallest window side, frame pixels
    zoom_max_side: float = 1.2  # largest window side, x the frame's longer side
    zoom_paper_prompt: float = 0.3  # share of zoom samples prompted at the paper prompt
    frame_windows: float = 0.0  # share of zoom windows sized from the frame, not the object
    frame_min: float = 0.08  # their side / the frame's shorter side, lower end (log-uniform)
    frame_max: float = 0.5  # upper end
    copy_paste: float = 0.2  # probability of pasting the object onto another photo
    paste_scale_min: float = 0.5
    paste_scale_max: float = 1.5
    hflip: float = 0.5
    colour: float = 0.8
    blur: float = 0.1
    noise: float = 0.1
    jpeg: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(
    zoom=0,
    prompt_jitter=0,
    scale_prob=0,
    box_jitter=0,
    copy_paste=0,
    hflip=0,
    colour=0,
    blur=0,
    noise=0,
    jpeg=0,
)


def _nearest_mask_pixel(mask: np.ndarray, x: float, y: float) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
    return int(xs[i]), int(ys[i])


def copy_paste(
    data: InstanceSet, inst: Instance, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, Instance]:
    """Paste ``inst``'s object (pixels under its mask) onto another training photo at a
    random scale and place; returns the new photo and the pasted object as an Instance."""
    src = data.images[inst.image_index]
    j = int(rng.integers(len(data.images)))
    if j == inst.image_index and len(data.images) > 1:
        j = (j + 1) % len(data.images)
    bg = data.images[j]
    bh, bw = bg.shape[:2]
    mh, mw = inst.mask.shape
    f = float(np.exp(rng.uniform(np.log(cfg.paste_scale_min), np.log(cfg.paste_scale_max))))
    f = min(f, 0.9 * bw / mw, 0.9 * bh / mh)
    nw, nh = max(1, round(mw * f)), max(1, round(mh * f))
    patch = src[inst.mask_y : inst.mask_y + mh, inst.mask_x : inst.mask_x + mw]
    patch = cv2.resize(patch, (nw, nh), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(inst.mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = int(rng.integers(0, bw - nw + 1))
    y = int(rng.integers(0, bh - nh + 1))
    out = bg.copy()
    region = out[y : y + nh, x : x + nw].astype(np.float32)
    a = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None] if min(nw, nh) >= 3 else alpha[..., None]
    out[y : y + nh, x : x + nw] = (a * patch + (1 - a) * region).astype(np.uint8)
    mask = alpha > 0.5
    if not mask.any():
        mask[nh // 2, nw // 2] = True
    pasted = Instance(
        image_index=j,
        ann_id=inst.ann_id,
        category=inst.category,
        box=(float(x), float(y), float(x + nw), float(y + nh)),
        mask_x=x,
        mask_y=y,
        mask=mask,
        area=int(mask.sum()),
        source=inst.source,
    )
    return out, pasted


def photometric(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    img = crop.astype(np.float32)
    if rng.random() < cfg.colour:
        img = img * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.6, 1.4)  # saturation
        img = img * rng.uniform(0.92, 1.08, size=3)  # per-channel gain (white balance)
    img = np.clip(img, 0, 255)
    if rng.random() < cfg.noise:
        img = np.clip(img + rng.normal(0, rng.uniform(2, 10), img.shape), 0, 255)
    out = img.astype(np.uint8)
    if rng.random() < cfg.blur:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < cfg.jpeg:
        q = int(rng.integers(30, 90))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def zoom_window(
    inst: Instance, width: int, height: int, rng: np.random.Generator, cfg: AugmentConfig
) -> Window:
    """A zoom window for ``inst``: centred on a mask pixel drawn uniformly (or on the paper
    prompt), its side such that the mask's longer extent fills a uniform share in
    [zoom_min, zoom_max] of it, clamped to [zoom_min_side, zoom_max_side x longer side];
    with probability ``frame_windows`` the side is instead a log-uniform share in
    [frame_min, frame_max] of the frame's shorter side, whatever the object's size."""
    if rng.random() < cfg.zoom_paper_prompt:
        px, py = paper_prompt_point(inst.mask)  # type: ignore[misc]
    else:
        ys, xs = np.nonzero(inst.mask)
        k = int(rng.integers(xs.size))
        px, py = int(xs[k]), int(ys[k])
    if cfg.frame_windows > 0 and rng.random() < cfg.frame_windows:
        share = np.exp(rng.uniform(np.log(cfg.frame_min), np.log(cfg.frame_max)))
        side = float(share) * min(width, height)
    else:
        side = float(max(inst.mask.shape)) / rng.uniform(cfg.zoom_min, cfg.zoom_max)
    side = float(np.clip(side, cfg.zoom_min_side, cfg.zoom_max_side * max(width, height)))
    return Window.around_pixel(px + inst.mask_x, py + inst.mask_y, side)


class Sample(NamedTuple):
    crop: np.ndarray  # (96, 96, 3) uint8 RGB
    mask: np.ndarray  # (96, 96) bool
    box: np.ndarray  # (4,) the box prompt in crop pixels; the whole crop for a point


class Batch(NamedTuple):
    crops: np.ndarray  # (N, 96, 96, 3) uint8 RGB
    masks: np.ndarray  # (N, 96, 96) bool
    boxes: np.ndarray  # (N, 4) float64


def make_sample(
    data: InstanceSet,
    index: int,
    protocol: str,
    rng: np.random.Generator,
    cfg: AugmentConfig = NO_AUGMENT,
) -> Sample:
    """Instance ``index`` under ``protocol``. A box sample carries its (jittered) box
    prompt in crop pixels, mirrored with the crop, for box-conditioned training."""
    check_protocol(protocol)
    inst = data.instances[index]
    image = data.images[inst.image_index]
    if cfg.copy_paste > 0 and rng.random() < cfg.copy_paste:
        image, inst = copy_paste(data, inst, rng, cfg)
    h, w = image.shape[:2]
    size = MODEL_INPUT_SIZE
    box = np.array([0.0, 0.0, size, size])
    window = None
    if protocol == "point" and cfg.zoom > 0 and rng.random() < cfg.zoom:
        window = zoom_window(inst, w, h, rng, cfg)
        crop = window_to_model_input(image, "rgb8", window)
        mask = window_mask(inst.mask, window, offset=(inst.mask_x, inst.mask_y))
    elif protocol == "point":
        px, py = paper_prompt_point(inst.mask)  # type: ignore[misc]
        if cfg.prompt_jitter > 0 and rng.random() < cfg.prompt_jitter:
            mh, mw = inst.mask.shape
            qx = px + rng.normal(0, cfg.jitter_sigma * mw)
            qy = py + rng.normal(0, cfg.jitter_sigma * mh)
            px, py = _nearest_mask_pixel(inst.mask, qx, qy)
        side = MODEL_INPUT_SIZE
        if cfg.scale_prob > 0 and rng.random() < cfg.scale_prob:
            s = np.exp(rng.uniform(np.log(cfg.scale_min), np.log(cfg.scale_max)))
            side = max(8, round(MODEL_INPUT_SIZE * s))
        roi = point_roi((px + inst.mask_x, py + inst.mask_y), w, h, side=side)
    else:
        x0, y0, x1, y1 = inst.box
        if cfg.box_jitter > 0:
            bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
            d = rng.normal(0, cfg.box_jitter, 4) * np.array([bw, bh, bw, bh])
            x0, y0, x1, y1 = x0 + d[0], y0 + d[1], x1 + d[2], y1 + d[3]
            x0, x1 = sorted((float(np.clip(x0, 0, w)), float(np.clip(x1, 0, w))))
            y0, y1 = sorted((float(np.clip(y0, 0, h)), float(np.clip(y1, 0, h))))
        roi = box_roi((x0, y0, x1, y1), w, h)
        box = box_in_crop((x0, y0, x1, y1), roi, size)
    if window is None:
        crop = cut(image, roi)
        mask = resize(inst.mask_region(roi.x, roi.y, roi.width, roi.height), nearest=True)
    if cfg.hflip > 0 and rng.random() < cfg.hflip:
        crop, mask = crop[:, ::-1], mask[:, ::-1]
        box = np.array([size - box[2], box[1], size - box[0], box[3]])
    if cfg.colour or cfg.noise or cfg.blur or cfg.jpeg:
        crop = photometric(np.ascontiguousarray(crop), rng, cfg)
    return Sample(np.ascontiguousarray(crop), np.ascontiguousarray(mask), box)


def make_batch(
    data: InstanceSet,
    indices: np.ndarray,
    protocol: str,
    rng: np.random.Generator,
    cfg: AugmentConfig = NO_AUGMENT,
) -> Batch:
    crops = np.empty((len(indices), MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, 3), np.uint8)
    masks = np.empty((len(indices), MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), bool)
    boxes = np.empty((len(indices), 4), np.float64)
    for k, i in enumerate(indices):
        crops[k], masks[k], boxes[k] = make_sample(data, int(i), protocol, rng, cfg)
    return Batch(crops, masks, boxes)
