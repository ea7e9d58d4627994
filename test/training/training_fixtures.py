"""Tiny generated COCO-format datasets for the training tests (written to tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def make_coco_folder(
    root: Path, n_images: int = 8, size: tuple[int, int] = (160, 120), seed: int = 0
) -> Path:
    """Images of noise with 1-2 filled shapes each: ellipses as polygons, rectangles as
    compressed RLE. Returns the folder (annotations.json + images/)."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 0)
        for k in range(1 + i % 2):
            colour = tuple(int(c) for c in rng.integers(120, 255, 3))
            cx, cy = int(rng.integers(30, w - 30)), int(rng.integers(30, h - 30))
            ax, ay = int(rng.integers(10, 28)), int(rng.integers(10, 28))
            m = np.zeros((h, w), np.uint8)
            if k == 0:
                pts = cv2.ellipse2Poly((cx, cy), (ax, ay), 0, 0, 360, 10)
                cv2.fillPoly(m, [pts], 1)
                seg: object = [pts.astype(float).ravel().tolist()]
            else:
                m[cy - ay : cy + ay, cx - ax : cx + ax] = 1
                rle = mask_utils.encode(np.asfortranarray(m))
                seg = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            img[m > 0] = colour
            x, y, bw, bh = cv2.boundingRect(m)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1 + k,
                    "segmentation": seg,
                    "area": float(m.sum()),
                    "bbox": [x, y, bw, bh],
                    "iscrowd": 0,
                }
            )
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / "images" / name), img[:, :, ::-1])
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
    cats = [{"id": 1, "name": "ellipse"}, {"id": 2, "name": "rectangle"}]
    data = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def read_annotations(root: Path) -> dict:
    return json.loads((root / "annotations.json").read_text())


def write_annotations(root: Path, data: dict) -> None:
    (root / "annotations.json").write_text(json.dumps(data))


def disk_teacher(crops: np.ndarray, protocol: str) -> np.ndarray:
    """A stand-in Teacher: confident logits of a centred disk (radius 30 px)."""
    yy, xx = np.mgrid[0:96, 0:96]
    disk = ((xx - 48) ** 2 + (yy - 48) ** 2 <= 30**2).astype(np.float32)
    return np.broadcast_to((disk * 8 - 4)[None, None], (len(crops), 1, 96, 96)).copy()


def picosam2_with_statistics(seed: int):
    """A PicoSAM2 in eval mode with non-trivial batch-norm statistics, as a trained one
    has (a fresh one folds to many equal zero biases, which the exporter shares)."""
    import torch

    from training.model import PicoSAM2

    torch.manual_seed(seed)
    m = PicoSAM2()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
    return m.eval()
