"""Can the point network's own features tell how large the clicked object is?

The whole-object search (``core.whole_object``) loses most where it misjudges the
object's scale: on held-out instances, the second window sized from the TRUE extent
scores far above the search's own rules (``training.whole_object_search --oracle``). A
model that outputs a scale (a second output channel) would change the IMX500 contract;
this probe asks first whether the features such an output would be read from carry the
scale at all. For each click, the search's first window goes through the point model
with two inner tensors exposed: the bottleneck (the first upsampling's input, pooled:
mean and max per channel) and the head's input (pooled over the click's component and
over the window), plus the component's area, border contact and extent. A ridge
regression, fitted on the TRAINING split (``--clicks`` clicks per instance: the paper's
centre point and random mask pixels), predicts log(needed side / first side), where the
needed side is the one the true-extent upper bound uses (the extent filling ``fill`` of
the window, its reach from the click covered with ``margin``).

On the held-out split it prints the prediction's log error (standard deviation) against
a constant's and the full-frame mIoU of the first window, then a second window sized
from the prediction, then the box model on that window's component (three runs, as the
upper bound runs them), next to the same with the true side (``--true-noise``: also with
noise on it) and the search's defaults.

    python -m training.scale_probe --data ../shared/data/train-real/coco2017 \\
        ../shared/data/train-real/davis2016 --first-side-fraction 0.12 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.geometry import paper_prompt_point
from picosam2_ros.core.pipeline import CropSettings
from picosam2_ros.core.preprocess import normalise
from picosam2_ros.core.whole_object import (
    WholeObjectSettings,
    _click_component,
    centre_label,
    first_side,
)
from picosam2_ros.core.window import Window, window_to_model_input
from picosam2_ros.resources import resolve_model_paths
from training.data import InstanceSet, load_coco_folders, size_class
from training.train import is_dev_image
from training.whole_object_eval import random_mask_point
from training.whole_object_search import (
    CachedRuns,
    Piece,
    add_data_and_model_options,
    evaluate_settings,
    make_clicks,
    needed_side,
    piece_iou,
    summarise,
)

Click = tuple[float, float]


class FeatureModel:
    """The point model with its bottleneck and its head's input as extra outputs."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        model = onnx.load(str(path))
        nodes = list(model.graph.node)
        bottleneck = next(n for n in nodes if n.op_type == "Resize").input[0]
        head_input = next(n for n in nodes if "logits" in n.output).input[0]
        for name in (bottleneck, head_input):
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def features(self, crops: np.ndarray, threshold: float) -> np.ndarray:
        """(N, S, S, 3) uint8 crops -> (N, F) features (module docstring)."""
        logits, bottleneck, head = self.session.run(None, {self.input_name: normalise(crops)})
        rows = []
        for lg, bn, hd in zip(logits[:, 0], bottleneck, head, strict=True):
            comp = _centre_mask(lg > threshold)
            size = comp.shape[0]
            if comp.any():
                ys, xs = np.nonzero(comp)
                extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / size
                half = size / 2.0
                reach = max(
                    half - xs.min(), xs.max() + 1 - half, half - ys.min(), ys.max() + 1 - half
                )
                pooled = hd[:, comp].mean(axis=1)
                mean_logit = float(lg[comp].mean())
            else:
                extent, reach, pooled, mean_logit = 1.0 / size, 1.0, np.zeros(hd.shape[0]), -5.0
            area = float(comp.mean())
            edges = (comp[:, 0].any(), comp[0].any(), comp[:, -1].any(), comp[-1].any())
            border = float(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]).mean())
            mask_stats = [
                area, np.log(max(area, 1e-3)), border, float(sum(edges)), mean_logit,
                np.log(extent), np.log(reach / (size / 2.0)),
            ]  # fmt: skip
            rows.append(
                np.concatenate(
                    [
                        bn.mean(axis=(1, 2)),
                        bn.max(axis=(1, 2)),
                        pooled,
                        hd.mean(axis=(1, 2)),
                        mask_stats,
                    ]
                )
            )
        return np.asarray(rows, dtype=np.float64)


def _centre_mask(mask: np.ndarray) -> np.ndarray:
    """The component with most pixels among the 4x4 around the centre (as the search's)."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    label = centre_label(labels, mask.shape[0] // 2)
    return np.asarray(labels == label) if label else np.zeros(mask.shape, dtype=bool)


def window_set(
    data: InstanceSet,
    clicks: Sequence[Sequence[Click]],
    model: FeatureModel,
    settings: WholeObjectSettings,
    threshold: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Features, targets log(needed / first side) and first sides for every instance's
    clicks (``clicks[k]``: instance k's), in instance-then-click order."""
    crops, targets, sides = [], [], []
    feats: list[np.ndarray] = []
    total = sum(len(c) for c in clicks)
    for inst, inst_clicks in zip(data.instances, clicks, strict=True):
        image = data.images[inst.image_index]
        h, w = image.shape[:2]
        mh, mw = inst.mask.shape
        for click in inst_clicks:
            side = first_side(w, h, settings)
            window = Window(np.floor(click[0]) + 0.5, np.floor(click[1]) + 0.5, side)
            crops.append(window_to_model_input(image, "rgb8", window))
            need = needed_side(click, (inst.mask_x, inst.mask_y, mw, mh), (w, h), settings.fill)
            targets.append(np.log(need / side))
            sides.append(side)
            if len(crops) == 64:
                feats.append(model.features(np.stack(crops), threshold))
                crops = []
                if progress is not None:
                    progress(len(targets), total)
    if crops:
        feats.append(model.features(np.stack(crops), threshold))
    return np.concatenate(feats), np.asarray(targets), sides


def fit_ridge(x: np.ndarray, y: np.ndarray, strength: float) -> Callable[[np.ndarray], np.ndarray]:
    """Ridge regression on standardised features (the intercept not penalised)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    a = np.c_[np.ones(len(x)), (x - mean) / scale]
    penalty = strength * np.eye(a.shape[1])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(a.T @ a + penalty, a.T @ y)

    def predict(z: np.ndarray) -> np.ndarray:
        return np.asarray(np.c_[np.ones(len(z)), (z - mean) / scale] @ coef)

    return predict


def second_window_then_box(
    runs: CachedRuns, image_index: int, click: Click, side: float, threshold: float
) -> Piece:
    """The second window of ``side`` around the click, then the box model on its click
    component's box (the native crop when nothing lies under the click)."""
    h, w = runs.data.images[image_index].shape[:2]
    window = Window(np.floor(click[0]) + 0.5, np.floor(click[1]) + 0.5, side)
    comp = _click_component(runs.window_logits(image_index, window), window, w, h, threshold)
    if comp is None:
        return runs.native_piece(image_index, click)
    return runs.box_piece(image_index, comp.box)


def train_clicks(data: InstanceSet, count: int) -> list[list[Click]]:
    """The paper's centre point and ``count - 1`` random mask pixels per instance."""
    out = []
    for inst in data.instances:
        p = paper_prompt_point(inst.mask)
        assert p is not None
        clicks = [(float(p[0] + inst.mask_x), float(p[1] + inst.mask_y))]
        for seed in range(1, count):
            rx, ry = random_mask_point(inst.mask, 1000 + seed, inst.ann_id)
            clicks.append((float(rx + inst.mask_x), float(ry + inst.mask_y)))
        out.append(clicks)
    return out


def probe(
    train: InstanceSet,
    held_out: InstanceSet,
    point_path: Path,
    box_path: Path,
    first_fraction: float,
    clicks_per_instance: int,
    strength: float,
    threads: int,
    noise: Sequence[float] = (),
) -> dict[str, object]:
    """One first-window size: the fit, its log error and the searches' mIoU (module
    docstring)."""
    settings = WholeObjectSettings(first_side_fraction=first_fraction)
    crop = CropSettings()
    model = FeatureModel(point_path, threads)

    def progress(done: int, total: int) -> None:
        print(f"\r  features: {done}/{total} windows", end="", file=sys.stderr, flush=True)

    x_train, y_train, _ = window_set(
        train, train_clicks(train, clicks_per_instance), model, settings, crop.threshold, progress
    )
    print(file=sys.stderr)
    eval_clicks = make_clicks(held_out, seed=0)
    per_instance = [list(pair) for pair in zip(*eval_clicks.values(), strict=True)]
    x_eval, y_eval, sides = window_set(held_out, per_instance, model, settings, crop.threshold)
    predict = fit_ridge(x_train, y_train, strength)
    pred_train, pred_eval = predict(x_train), predict(x_eval)
    runs = CachedRuns(
        held_out, OnnxBackend(point_path, threads), OnnxBackend(box_path, threads), crop
    )
    sizes = [size_class(inst.area) for inst in held_out.instances]
    out: dict[str, object] = {
        "first_side_fraction": first_fraction,
        "windows": {"train": len(y_train), "held_out": len(y_eval)},
        "log_error_sd": {
            "train_fit": round(float(np.std(y_train - pred_train)), 3),
            "held_out": round(float(np.std(y_eval - pred_eval)), 3),
            "train_constant": round(float(np.std(y_train)), 3),
            "held_out_constant": round(float(np.std(y_eval - y_train.mean())), 3),
        },
    }
    kinds = list(eval_clicks)
    rng = np.random.default_rng(0)
    variants = [("predicted_side", pred_eval), ("true_side", y_eval)]
    variants += [
        (f"true_side_noise_{sd:g}", y_eval + rng.normal(0.0, sd, y_eval.shape)) for sd in noise
    ]
    for name, log_sides in variants:
        result: dict[str, object] = {}
        for k, kind in enumerate(kinds):
            ious = []
            for i, (inst, click) in enumerate(
                zip(held_out.instances, eval_clicks[kind], strict=True)
            ):
                j = i * len(kinds) + k
                h, w = held_out.images[inst.image_index].shape[:2]
                side = min(sides[j] * float(np.exp(log_sides[j])), 1.5 * max(w, h))
                piece = second_window_then_box(runs, inst.image_index, click, side, crop.threshold)
                mh, mw = inst.mask.shape
                ious.append(piece_iou(piece, (inst.mask_x, inst.mask_y, mw, mh), inst.mask))
            result[kind] = summarise(ious, sizes)
        out[f"second_window_{name}_then_box"] = result
    out["search_defaults"] = evaluate_settings(runs, eval_clicks, WholeObjectSettings())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.scale_probe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_and_model_options(
        ap, "COCO-format TRAINING folder(s)", "training.train's held-out share (scored)"
    )
    ap.add_argument(
        "--first-side-fraction",
        type=float,
        nargs="+",
        default=[0.12],
        help="first window side(s), x the frame's shorter side; one probe each",
    )
    ap.add_argument("--clicks", type=int, default=3, help="training clicks per instance")
    ap.add_argument("--ridge", type=float, default=1000.0, help="ridge strength")
    ap.add_argument(
        "--true-noise",
        type=float,
        nargs="*",
        default=[],
        metavar="SD",
        help="also the true side with Gaussian noise of this SD on its log (one draw, seed 0): "
        "how accurate a scale estimate must be",
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if not 0.0 < args.held_out < 1.0:
        ap.error("--held-out must be in (0, 1): the probe fits on one split and scores the other")
    if args.clicks < 1:
        ap.error("--clicks must be at least 1")
    folders = list(args.data)
    train = load_coco_folders(
        folders, image_filter=lambda f, r: not is_dev_image(f, r, args.held_out)
    )
    held_out = load_coco_folders(
        folders, min_area=1, image_filter=lambda f, r: is_dev_image(f, r, args.held_out)
    )
    if not train.instances or not held_out.instances:
        print(
            f"error: {len(train.instances)} training and {len(held_out.instances)} held-out "
            "instances; both splits need some",
            file=sys.stderr,
        )
        return 2
    paths = resolve_model_paths(str(args.model or ""), str(args.box_model or ""), whole_object=True)
    print(
        f"{len(train.instances)} training and {len(held_out.instances)} held-out instances; "
        f"{paths['point'].name} + {paths['box'].name}",
        flush=True,
    )
    for fraction in args.first_side_fraction:
        start = time.perf_counter()
        result = probe(
            train, held_out, paths["point"], paths["box"], fraction, args.clicks, args.ridge,
            args.threads, args.true_noise,
        )  # fmt: skip
        result["s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
