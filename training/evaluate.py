"""Evaluation under the paper protocols, with trivial baselines.

For every non-crowd instance of a COCO-format folder: take the protocol's crop (point:
paper prompt + paper crop; box: the annotation box through ``box_to_roi``), resize to
96x96, predict, threshold the logits at 0, and compare with the ground-truth mask cut
and resized (nearest) the same way. Reports mIoU, the paper's "mAP" (share of
instances with IoU >= t, averaged over t = 0.50:0.05:0.95), mIoU by object size (COCO
classes by mask area: small < 32^2, medium < 96^2, large) and per category.

A box model that carries a box-prior weight (ONNX metadata, see
picosam2_ros.core.box_prior) is decoded with its box, as the package does; its plain
logits are reported next to it.

Baselines on the same instances: point: the whole crop and a centred disk (radius
``DISK_RADIUS``); box: the filled box and the ellipse inscribed in the box.

    python -m training.evaluate --model picosam2_point.onnx --data DIR --protocol point
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picosam2_ros.core.box_prior import BOX_PRIOR_WEIGHT_KEY, apply_box_prior
from picosam2_ros.core.geometry import MODEL_INPUT_SIZE
from picosam2_ros.core.metrics import mask_iou, paper_map
from training.crops import PROTOCOLS, check_protocol, cut, normalise, protocol_roi
from training.data import InstanceSet, load_coco_folders, size_class

#: Radius (pixels, in the 96x96 crop) of the centred-disk baseline.
DISK_RADIUS = 24

Predictor = Callable[[np.ndarray], np.ndarray]  # (N,3,96,96) float32 -> (N,1,96,96) logits


@dataclass
class EvalSet:
    protocol: str
    crops: np.ndarray  # (N, 96, 96, 3) uint8 RGB
    masks: np.ndarray  # (N, 96, 96) bool
    boxes: np.ndarray  # (N, 4) the box prompt in crop pixels (x0, y0, x1, y1)
    categories: list[str]
    sizes: list[str]

    def __len__(self) -> int:
        return len(self.crops)


def build_eval_set(data: InstanceSet, protocol: str) -> EvalSet:
    check_protocol(protocol)
    crops, masks, boxes, cats, sizes = [], [], [], [], []
    for inst in data.instances:
        image = data.images[inst.image_index]
        h, w = image.shape[:2]
        full = inst.full_mask(h, w)
        roi = protocol_roi(protocol, full, inst.box)
        if roi is None:
            continue
        crops.append(cut(image, roi))
        masks.append(cut(full, roi, nearest=True))
        sx, sy = MODEL_INPUT_SIZE / roi.width, MODEL_INPUT_SIZE / roi.height
        x0, y0, x1, y1 = inst.box
        boxes.append(((x0 - roi.x) * sx, (y0 - roi.y) * sy, (x1 - roi.x) * sx, (y1 - roi.y) * sy))
        cats.append(inst.category)
        sizes.append(size_class(inst.area))
    return EvalSet(
        protocol,
        np.stack(crops),
        np.stack(masks),
        np.clip(np.array(boxes, dtype=np.float64), 0, MODEL_INPUT_SIZE),
        cats,
        sizes,
    )


def summarise(ious: np.ndarray, es: EvalSet) -> dict:
    out: dict = {
        "n": len(ious),
        "miou": float(np.mean(ious)),
        "paper_map": paper_map(ious),
    }
    by_size: dict[str, list[float]] = defaultdict(list)
    by_cat: dict[str, list[float]] = defaultdict(list)
    for iou, s, c in zip(ious, es.sizes, es.categories, strict=True):
        by_size[s].append(float(iou))
        by_cat[c].append(float(iou))
    out["by_size"] = {
        k: {"n": len(v), "miou": float(np.mean(v))}
        for k, v in sorted(
            by_size.items(), key=lambda kv: ["small", "medium", "large"].index(kv[0])
        )
    }
    out["by_category"] = {
        k: {"n": len(v), "miou": float(np.mean(v))} for k, v in sorted(by_cat.items())
    }
    return out


def predict_logits(predict: Predictor, es: EvalSet, batch: int = 64) -> np.ndarray:
    """(N, 96, 96) logits of every crop."""
    out = [
        np.asarray(predict(normalise(es.crops[i : i + batch])))[:, 0]
        for i in range(0, len(es), batch)
    ]
    return np.concatenate(out).astype(np.float32)


def decoded_masks(logits: np.ndarray, es: EvalSet, box_prior_weight: float = 0.0) -> np.ndarray:
    """Masks as the package decodes them: box crops with their box (core.box_prior)."""
    if es.protocol == "box" and box_prior_weight > 0.0:
        logits = apply_box_prior(logits, es.boxes, box_prior_weight)
    return logits > 0


def predict_masks(
    predict: Predictor, es: EvalSet, batch: int = 64, box_prior_weight: float = 0.0
) -> np.ndarray:
    return decoded_masks(predict_logits(predict, es, batch), es, box_prior_weight)


def ious_of(masks: np.ndarray, es: EvalSet) -> np.ndarray:
    return np.array([mask_iou(p, t) for p, t in zip(masks, es.masks, strict=True)])


def evaluate_predictor(
    predict: Predictor, es: EvalSet, batch: int = 64, box_prior_weight: float = 0.0
) -> dict:
    return summarise(ious_of(predict_masks(predict, es, batch, box_prior_weight), es), es)


#: Weights tried when calibrating box-conditioned decoding.
BOX_PRIOR_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def calibrate_box_prior(predict: Predictor, es: EvalSet) -> tuple[float, dict[float, float]]:
    """The box-prior weight maximising mIoU on ``es`` (held-out TRAINING box crops);
    0 unless another weight is clearly better."""
    logits = predict_logits(predict, es)
    scores = {w: float(ious_of(decoded_masks(logits, es, w), es).mean()) for w in BOX_PRIOR_WEIGHTS}
    best = max(scores, key=lambda w: scores[w])
    if scores[best] - scores[0.0] < 0.003:
        best = 0.0
    return best, scores


def onnx_box_prior_weight(path: str | Path) -> float:
    """The box-prior weight an ONNX model carries (picosam2_ros.core.box_prior)."""
    import onnx

    for prop in onnx.load(str(path), load_external_data=False).metadata_props:
        if prop.key == BOX_PRIOR_WEIGHT_KEY:
            return float(prop.value)
    return 0.0


def baseline_masks(es: EvalSet) -> dict[str, np.ndarray]:
    n, s = len(es), MODEL_INPUT_SIZE
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    if es.protocol == "point":
        disk = (xx - s / 2) ** 2 + (yy - s / 2) ** 2 <= DISK_RADIUS**2
        return {
            "whole crop": np.ones((n, s, s), bool),
            f"centred disk r={DISK_RADIUS}": np.broadcast_to(disk, (n, s, s)),
        }
    filled = np.zeros((n, s, s), bool)
    ellipse = np.zeros((n, s, s), bool)
    for k, (x0, y0, x1, y1) in enumerate(es.boxes):
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        filled[k] = inside
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ax, ay = max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
        ellipse[k] = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    return {"filled box": filled, "inscribed ellipse": ellipse}


def evaluate_baselines(es: EvalSet) -> dict[str, dict]:
    out = {}
    for name, masks in baseline_masks(es).items():
        ious = np.array([mask_iou(p, t) for p, t in zip(masks, es.masks, strict=True)])
        out[name] = summarise(ious, es)
    return out


def onnx_predictor(path: str | Path, threads: int = 2) -> Predictor:
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"model not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise SystemExit(f"cannot load ONNX model {path}: {exc}") from exc
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def torch_predictor(model, threads: int | None = None) -> Predictor:
    import torch

    if threads:
        torch.set_num_threads(threads)
    model.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).float().numpy()

    return run


def bench_onnx(path: str | Path, batch: int, threads: int, seconds: float = 3.0) -> float:
    """Median milliseconds per prompt (per crop) of an ONNX model at ``batch``."""
    import time

    pred = onnx_predictor(path, threads)
    x = np.random.default_rng(0).standard_normal((batch, 3, 96, 96)).astype(np.float32)
    for _ in range(3):
        pred(x)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        pred(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000 / batch)


def format_report(name: str, res: dict) -> str:
    sizes = ", ".join(f"{k} {v['miou']:.3f} (n={v['n']})" for k, v in res["by_size"].items())
    return f"{name:<24} mIoU {res['miou']:.4f}  paper-mAP {res['paper_map']:.4f}  [{sizes}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="mIoU / paper mAP of a PicoSAM2 model (ONNX or training checkpoint) "
        "under the point and/or box protocol, next to trivial baselines.",
    )
    ap.add_argument("--model", nargs="+", required=True, help=".onnx file(s) or .pt checkpoint")
    ap.add_argument("--data", nargs="+", required=True, help="COCO-format folder(s)")
    ap.add_argument("--protocol", default="point", help="point, box or both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument(
        "--bench",
        action="store_true",
        help="also time ONNX models (batch 1 and 8, 1 and 2 threads)",
    )
    args = ap.parse_args(argv)
    protocols = list(PROTOCOLS) if args.protocol == "both" else [check_protocol(args.protocol)]
    data = load_coco_folders(args.data, min_area=1)
    results: dict = {"data": args.data, "protocols": {}}
    for protocol in protocols:
        es = build_eval_set(data, protocol)
        res: dict = {"n": len(es), "baselines": evaluate_baselines(es), "models": {}}
        print(f"== {protocol} protocol, {len(es)} instances")
        for name, r in res["baselines"].items():
            print(format_report(f"baseline: {name}", r))
        for m in args.model:
            weight = 0.0
            if m.endswith(".onnx"):
                pred = onnx_predictor(m, args.threads)
                weight = onnx_box_prior_weight(m)
            else:
                from training.model import load_weights

                pred = torch_predictor(load_weights(m), args.threads)
            r = evaluate_predictor(pred, es, box_prior_weight=weight)
            if protocol == "box" and weight > 0.0:
                r["box_prior_weight"] = weight
                r["without_box_prior"] = evaluate_predictor(pred, es)
                print(format_report(f"{Path(m).name} (plain logits)", r["without_box_prior"]))
            res["models"][m] = r
            print(format_report(Path(m).name, r))
        results["protocols"][protocol] = res
    if args.bench:
        results["bench_ms_per_prompt"] = {}
        for m in (m for m in args.model if m.endswith(".onnx")):
            row = {}
            for threads in (1, 2):
                for batch in (1, 8):
                    row[f"batch{batch}_threads{threads}"] = round(bench_onnx(m, batch, threads), 3)
            results["bench_ms_per_prompt"][m] = row
            print(f"{Path(m).name}: ms per prompt {row}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
