"""Fast offline comparison of whole-object search policies (``core.whole_object``) on
held-out TRAINING instances: every network answer is cached, so a policy that asks for
windows and boxes already seen costs no network run.

    python -m training.whole_object_search --data ../shared/data/train-real/coco2017 \\
        ../shared/data/train-real/davis2016 --held-out 0.05 \\
        --try "" "grow=5" "first_side_fraction=0.1,grow=5"

Each ``--try`` is one ``WholeObjectSettings`` as ``name=value`` pairs over the defaults
("" = the defaults); every try after the first also prints its paired difference from
the first per prompt kind (``vs_first``: mean, bootstrap standard error, instances
changed), which tells a change from noise. Each instance is clicked at the paper's
centre point and at a mask pixel drawn as ``picosam2-make-bag --prompt random`` draws
it; each click runs through ``ClickSearch`` exactly as ``core.pipeline`` runs it (same
windows, box crops, box decoding, component selection and native-crop fallback), one
network run at a time through the cache. The printed full-frame mIoU therefore equals
``training.whole_object_eval``'s for the same settings (``--verify`` checks it on the
defaults). ``--oracle`` adds two upper bounds: the point window sized from the TRUE mask's
extent then the box model on its box, and the box model on the TRUE box. ``--diagnose``
asks where the first try loses: the best of the windows each click ran, chosen with
hindsight (the most any score picking among them could give); each size class split by
the last window's side against the side the true extent needs (under 0.7x, 0.7-1.4x,
over 1.4x), with the IoU the same network gives at the needed side; and the search
told by the truth whether the object goes on past its first window.

The cache (``--cache``, a pickle per model pair) keeps point logits per image, window
centre and side, box-crop masks per image and box, native-crop masks per click. Pass
``--model`` / ``--box-model`` to evaluate another (for example retrained) model pair;
``--against`` adds the paired difference of the first try's IoUs from those of another
point model (the same clicks, settings and box model): the test a retrained model passes
before it replaces the shipped one. ``--first-model`` runs each click's first window
through another point model (a scout) and every later one through ``--model``
(``vs_first_model``: that search's figures and its paired difference from the first try).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.box_prior import apply_box_prior, box_in_crop
from picosam2_ros.core.geometry import Roi, box_to_roi, paper_prompt_point, point_to_roi
from picosam2_ros.core.pipeline import CropSettings
from picosam2_ros.core.postprocess import keep_components_at, resize_mask
from picosam2_ros.core.preprocess import crop_to_model_input, normalise
from picosam2_ros.core.whole_object import (
    BoxRun,
    ClickSearch,
    PointRun,
    WholeObjectSettings,
    _click_component,
    _Component,
)
from picosam2_ros.core.window import Window, logits_to_frame, window_to_model_input
from picosam2_ros.resources import resolve_model_paths
from training.data import InstanceSet, size_class
from training.whole_object_eval import load_instances, random_mask_point

Piece = tuple[Roi, np.ndarray]  # a mask over a frame rectangle


def parse_settings(text: str) -> WholeObjectSettings:
    """``name=value,name=value`` over the defaults; values typed as the fields are."""
    types = {
        f.name: type(getattr(WholeObjectSettings(), f.name)) for f in fields(WholeObjectSettings)
    }
    changes: dict[str, object] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = pair.partition("=")
        if name not in types:
            raise SystemExit(f"unknown setting {name!r}; known: {', '.join(types)}")
        kind = types[name]
        changes[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(WholeObjectSettings(), **changes)  # type: ignore[arg-type]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class CachedRuns:
    """The point and box models on one data set, every answer kept."""

    def __init__(
        self, data: InstanceSet, point: OnnxBackend, box: OnnxBackend, crop: CropSettings
    ) -> None:
        self.data, self.point, self.box, self.crop = data, point, box, crop
        self.windows: dict[tuple[int, float, float, float], np.ndarray] = {}
        self.boxes: dict[tuple[int, tuple[float, float, float, float]], Piece] = {}
        self.natives: dict[tuple[int, float, float], Piece] = {}
        self.runs = 0

    def window_logits(self, image_index: int, window: Window) -> np.ndarray:
        key = (image_index, window.cx, window.cy, window.side)
        if key not in self.windows:
            size = self.point.input_size
            crop = window_to_model_input(self.data.images[image_index], "rgb8", window, size)
            self.windows[key] = self.point.infer(normalise(crop[None]))[0].astype(np.float32)
            self.runs += 1
        return self.windows[key]

    def box_piece(self, image_index: int, box: tuple[float, float, float, float]) -> Piece:
        """The box crop's mask as ``core.pipeline`` makes it (box-conditioned decoding)."""
        key = (image_index, box)
        if key not in self.boxes:
            image = self.data.images[image_index]
            h, w = image.shape[:2]
            size = self.box.input_size
            roi = box_to_roi(box, w, h, self.crop.box_margin)
            crop = crop_to_model_input(image, "rgb8", roi, size)
            logits = self.box.infer(normalise(crop[None]))
            weight = float(getattr(self.box, "box_prior_weight", 0.0))
            if weight > 0.0:
                logits = apply_box_prior(logits, box_in_crop(box, roi, size)[None], weight)
            small = logits[0] > self.crop.threshold
            self.boxes[key] = (roi, resize_mask(small, roi.width, roi.height))
            self.runs += 1
        return self.boxes[key]

    def native_piece(self, image_index: int, click: tuple[float, float]) -> Piece:
        """The native 96-px point crop (the answer where the search found nothing)."""
        key = (image_index, click[0], click[1])
        if key not in self.natives:
            image = self.data.images[image_index]
            h, w = image.shape[:2]
            size = self.point.input_size
            roi = point_to_roi(click[0], click[1], self.crop.point_side_px, w, h)
            crop = crop_to_model_input(image, "rgb8", roi, size)
            small = self.point.infer(normalise(crop[None]))[0] > self.crop.threshold
            self.natives[key] = (roi, resize_mask(small, roi.width, roi.height))
            self.runs += 1
        return self.natives[key]

    def load(self, path: Path) -> None:
        if path.is_file():
            with path.open("rb") as f:
                self.windows, self.boxes, self.natives = pickle.load(f)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump((self.windows, self.boxes, self.natives), f)


def search_click(
    runs: CachedRuns,
    image_index: int,
    click: tuple[float, float],
    settings: WholeObjectSettings,
    *,
    search: ClickSearch | None = None,
    seen: list[Window] | None = None,
    first: CachedRuns | None = None,
) -> tuple[Piece, ClickSearch, str]:
    """One click through ``ClickSearch`` as the pipeline runs it: its mask and how it
    ended ("box", "window" or "native"). ``search``: a search of this click to run
    instead of a plain one; ``seen`` (when given) receives the point windows it ran;
    ``first``: another point model's runs that answer the first window (the rest and
    the native fallback stay ``runs``')."""
    h, w = runs.data.images[image_index].shape[:2]
    threshold = runs.crop.threshold
    if search is None:
        search = ClickSearch(click, w, h, settings, threshold)
    while isinstance(run := search.next_run(), PointRun):
        if seen is not None:
            seen.append(run.window)
        answer = first if first is not None and search.point_runs == 0 else runs
        search.take_point(answer.window_logits(image_index, run.window))
    if isinstance(run, BoxRun):
        search.take_box()
        return runs.box_piece(image_index, run.box), search, "box"
    outcome = search.outcome()
    if not outcome.found:
        return runs.native_piece(image_index, click), search, "native"
    roi, logits = outcome.on_frame(w, h)
    mask = keep_components_at(logits > threshold, np.array([click]) - (roi.x, roi.y))
    return (roi, mask), search, "window"


def piece_iou(piece: Piece, truth_box: tuple[int, int, int, int], truth: np.ndarray) -> float:
    """IoU of a mask over a frame rectangle against the truth mask over its tight box
    (x, y, w, h): computed over the union of both rectangles only."""
    roi, mask = piece
    tx, ty, tw, th = truth_box
    x0, y0 = min(roi.x, tx), min(roi.y, ty)
    x1, y1 = max(roi.x + roi.width, tx + tw), max(roi.y + roi.height, ty + th)
    a = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    b = np.zeros_like(a)
    if mask.size:
        a[roi.y - y0 : roi.y - y0 + roi.height, roi.x - x0 : roi.x - x0 + roi.width] = mask
    b[ty - y0 : ty - y0 + th, tx - x0 : tx - x0 + tw] = truth
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def make_clicks(data: InstanceSet, seed: int) -> dict[str, list[tuple[float, float]]]:
    """Per prompt kind, one click (frame pixels) per instance, as make-bag draws them."""
    clicks: dict[str, list[tuple[float, float]]] = {"center": [], "random": []}
    for inst in data.instances:
        p = paper_prompt_point(inst.mask)
        assert p is not None
        clicks["center"].append((float(p[0] + inst.mask_x), float(p[1] + inst.mask_y)))
        rx, ry = random_mask_point(inst.mask, seed, inst.ann_id)
        clicks["random"].append((float(rx + inst.mask_x), float(ry + inst.mask_y)))
    return clicks


def summarise(ious: list[float], sizes: list[str]) -> dict[str, float | int]:
    iou = np.array(ious)
    out: dict[str, float | int] = {"miou": round(float(iou.mean()), 4)}
    for s in ("small", "medium", "large"):
        sel = np.array([z == s for z in sizes])
        out[s] = round(float(iou[sel].mean()), 4) if sel.any() else float("nan")
    return out


def paired_difference(
    ious: np.ndarray, base: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean per-instance IoU difference of ``ious`` over ``base`` (the same instances and
    clicks) and its bootstrap standard error: on ~150 instances a policy change moves a
    few dozen of them, so a mean difference within about two errors is noise."""
    diff = np.asarray(ious, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    return {
        "diff": round(float(diff.mean()), 4),
        "se": round(float(means.std()), 4),
        "changed": int(np.count_nonzero(np.abs(diff) > 1e-6)),
    }


def evaluate_settings(
    runs: CachedRuns,
    clicks: dict[str, list[tuple[float, float]]],
    settings: WholeObjectSettings,
    per_instance: dict[str, np.ndarray] | None = None,
    first: CachedRuns | None = None,
) -> dict[str, object]:
    """Per prompt kind: the mIoU (all, by size), how the searches ended and the network
    runs per click; ``per_instance`` (when given) receives each kind's IoUs; ``first``:
    the first window answered by another point model (``search_click``)."""
    sizes = [size_class(inst.area) for inst in runs.data.instances]
    out: dict[str, object] = {}
    for prompt, points in clicks.items():
        ious: list[float] = []
        ends: dict[str, int] = {}
        point_runs = 0
        for inst, click in zip(runs.data.instances, points, strict=True):
            piece, search, end = search_click(runs, inst.image_index, click, settings, first=first)
            mh, mw = inst.mask.shape
            ious.append(piece_iou(piece, (inst.mask_x, inst.mask_y, mw, mh), inst.mask))
            ends[end] = ends.get(end, 0) + 1
            point_runs += search.point_runs
        if per_instance is not None:
            per_instance[prompt] = np.array(ious)
        out[prompt] = summarise(ious, sizes) | {
            "ends": ends,
            "runs_per_click": round((point_runs + ends.get("box", 0)) / len(points), 3),
        }
    return out


def oracle(
    runs: CachedRuns, clicks: dict[str, list[tuple[float, float]]], fill: float
) -> dict[str, object]:
    """Upper bounds: the window sized from the TRUE extent (then the box model on its
    component's box), and the box model on the TRUE box."""
    sizes = [size_class(inst.area) for inst in runs.data.instances]
    out: dict[str, object] = {}
    true_box: list[float] = []
    for inst in runs.data.instances:
        mh, mw = inst.mask.shape
        box = (
            float(inst.mask_x),
            float(inst.mask_y),
            float(inst.mask_x + mw),
            float(inst.mask_y + mh),
        )
        true_box.append(
            piece_iou(
                runs.box_piece(inst.image_index, box), (inst.mask_x, inst.mask_y, mw, mh), inst.mask
            )
        )
    out["true_box"] = summarise(true_box, sizes)
    for prompt, points in clicks.items():
        ious: list[float] = []
        for inst, click in zip(runs.data.instances, points, strict=True):
            h, w = runs.data.images[inst.image_index].shape[:2]
            mh, mw = inst.mask.shape
            side = needed_side(click, (inst.mask_x, inst.mask_y, mw, mh), (w, h), fill)
            win = Window(int(click[0]) + 0.5, int(click[1]) + 0.5, side)
            comp = _click_component(
                runs.window_logits(inst.image_index, win), win, w, h, runs.crop.threshold
            )
            if comp is not None:
                piece = runs.box_piece(inst.image_index, comp.box)
            else:
                piece = runs.native_piece(inst.image_index, click)
            ious.append(piece_iou(piece, (inst.mask_x, inst.mask_y, mw, mh), inst.mask))
        out[f"true_extent_window_{prompt}"] = summarise(ious, sizes)
    return out


def needed_side(
    click: tuple[float, float],
    box: tuple[int, int, int, int],
    frame: tuple[int, int],
    fill: float,
) -> float:
    """The window side the true-extent upper bound gives a click: the object's longer
    extent filling ``fill`` of it, its farthest reach from the click covered 1.2x, at
    least 48 px, at most 1.5x the frame's longer side. ``box``: (x, y, w, h) of the mask."""
    x, y, w, h = box
    cx, cy = int(click[0]) + 0.5, int(click[1]) + 0.5
    reach = max(cx - x, x + w - cx, cy - y, y + h - cy)
    side = max(max(w, h) / fill, 2.0 * reach * 1.2, 48.0)
    return min(side, 1.5 * max(frame))


def window_piece(
    runs: CachedRuns, image_index: int, window: Window, click: tuple[float, float]
) -> Piece:
    """One point window's mask on the frame: the click's component of its logits."""
    h, w = runs.data.images[image_index].shape[:2]
    roi, logits = logits_to_frame(runs.window_logits(image_index, window), window, w, h)
    return roi, keep_components_at(logits > runs.crop.threshold, np.array([click]) - (roi.x, roi.y))


class _FirstWindowTold(ClickSearch):
    """The search with the first window's edge contact taken from the truth: when the
    true object goes on past that window inside the frame, the search grows as if the
    mask had reached the edge (the upper bound of a better first-window answer)."""

    def __init__(self, *args: object, overflows: bool, **kwargs: object) -> None:
        self.overflows = overflows
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def take_point(self, logits: np.ndarray) -> None:
        super().take_point(logits)
        if self.point_runs == 1 and self.overflows and self._window is not None:
            comp = self._component
            w = self._window
            box = comp.box if comp is not None else (w.cx - 0.5, w.cy - 0.5, w.cx + 0.5, w.cy + 0.5)
            self._component = _Component(box, (True, False, False, False))
            self._next = self._plan()


def overflows_window(
    window: Window, box: tuple[int, int, int, int], width: int, height: int
) -> bool:
    """Whether a mask's box (x, y, w, h) reaches past ``window`` where the frame goes on."""
    x, y, w, h = box
    left, top = window.cx - window.side / 2.0, window.cy - window.side / 2.0
    right, bottom = left + window.side, top + window.side
    return (
        (x < left and left > 0.5)
        or (y < top and top > 0.5)
        or (x + w > right and right < width - 0.5)
        or (y + h > bottom and bottom < height - 0.5)
    )


def diagnose(
    runs: CachedRuns, clicks: dict[str, list[tuple[float, float]]], settings: WholeObjectSettings
) -> dict[str, object]:
    """Where a search loses (see the module docstring): per prompt kind."""
    sizes = [size_class(inst.area) for inst in runs.data.instances]
    threshold = runs.crop.threshold
    out: dict[str, object] = {}
    for prompt, points in clicks.items():
        ious, best, told = [], [], []
        scale: dict[str, dict[str, list[float]]] = {}
        for inst, click, size in zip(runs.data.instances, points, sizes, strict=True):
            h, w = runs.data.images[inst.image_index].shape[:2]
            mh, mw = inst.mask.shape
            truth_box = (inst.mask_x, inst.mask_y, mw, mh)
            windows: list[Window] = []
            piece, _, _ = search_click(runs, inst.image_index, click, settings, seen=windows)
            iou = piece_iou(piece, truth_box, inst.mask)
            ious.append(iou)
            tries = [iou] + [
                piece_iou(window_piece(runs, inst.image_index, win, click), truth_box, inst.mask)
                for win in windows
            ]
            best.append(max(tries))
            need = needed_side(click, truth_box, (w, h), settings.fill)
            ratio = windows[-1].side / need
            group = "under" if ratio < 0.7 else "over" if ratio > 1.4 else "right"
            at_need = Window(math.floor(click[0]) + 0.5, math.floor(click[1]) + 0.5, need)
            right = piece_iou(
                window_piece(runs, inst.image_index, at_need, click), truth_box, inst.mask
            )
            cell = scale.setdefault(size, {}).setdefault(group, [])
            cell.extend([iou, right])
            over = overflows_window(windows[0], truth_box, w, h)
            told_search = _FirstWindowTold(click, w, h, settings, threshold, overflows=over)
            told_piece, _, _ = search_click(
                runs, inst.image_index, click, settings, search=told_search
            )
            told.append(piece_iou(told_piece, truth_box, inst.mask))
        base = np.array(ious)
        out[prompt] = {
            "search": summarise(ious, sizes),
            "best_window_hindsight": summarise(best, sizes)
            | paired_difference(np.array(best), base),
            "first_window_told": summarise(told, sizes) | paired_difference(np.array(told), base),
            "last_side_vs_needed": {
                size: {
                    group: {
                        "n": len(v) // 2,
                        "miou": round(float(np.mean(v[0::2])), 4),
                        "at_needed_side": round(float(np.mean(v[1::2])), 4),
                    }
                    for group, v in sorted(groups.items())
                }
                for size, groups in sorted(scale.items())
            },
        }
    return out


def paired_against(
    other: CachedRuns,
    clicks: dict[str, list[tuple[float, float]]],
    settings: WholeObjectSettings,
    ious: dict[str, np.ndarray],
) -> dict[str, object]:
    """Per prompt kind: the paired difference of ``ious`` from another model pair's IoUs
    (``other``) under the same settings and clicks, and that pair's own summary."""
    theirs: dict[str, np.ndarray] = {}
    summary = evaluate_settings(other, clicks, settings, theirs)
    return {p: paired_difference(ious[p], theirs[p]) | {"against_miou": summary[p]} for p in ious}


def paired_first_model(
    runs: CachedRuns,
    scout: CachedRuns,
    clicks: dict[str, list[tuple[float, float]]],
    settings: WholeObjectSettings,
    ious: dict[str, np.ndarray],
) -> dict[str, object]:
    """Per prompt kind: the search with its first window answered by another point model
    (``scout``; every later window by ``runs``' model), its summary and its paired
    difference from ``ious`` (the plain search's)."""
    mixed: dict[str, np.ndarray] = {}
    summary = evaluate_settings(runs, clicks, settings, mixed, first=scout)
    return {p: paired_difference(mixed[p], ious[p]) | {"miou": summary[p]} for p in ious}


def add_data_and_model_options(
    ap: argparse.ArgumentParser, data_help: str, held_out_help: str
) -> None:
    """--data, --held-out, --model and --box-model, as the whole-object tools take them."""
    ap.add_argument("--data", nargs="+", required=True, help=data_help)
    ap.add_argument("--held-out", type=float, default=0.05, help=held_out_help)
    ap.add_argument("--model", type=Path, help="point model (default: the shipped zoom model)")
    ap.add_argument("--box-model", type=Path, help="box model (default: the shipped one)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.whole_object_search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_and_model_options(
        ap,
        "COCO-format folder(s)",
        "training.train's held-out share of these TRAINING folders (0 = every image)",
    )
    ap.add_argument(
        "--against",
        type=Path,
        help="another point model: the first try's paired difference from it (vs_against)",
    )
    ap.add_argument(
        "--try",
        dest="tries",
        nargs="*",
        default=[""],
        help="settings to compare, each 'name=value,...' over the defaults; each try after "
        "the first also gets its paired difference from the first (vs_first: mean, bootstrap "
        "standard error, instances changed)",
    )
    ap.add_argument(
        "--first-model",
        type=Path,
        help="another point model that answers only the first window (a scout; later windows "
        "stay --model's): the first try so, and its paired difference from it (vs_first_model)",
    )
    ap.add_argument("--oracle", action="store_true", help="also the true-extent upper bounds")
    ap.add_argument(
        "--diagnose",
        action="store_true",
        help="where the first try loses: the best window with hindsight, the last window's "
        "side against the needed one by object size, the first window told the truth",
    )
    ap.add_argument(
        "--verify",
        action="store_true",
        help="check the defaults against training.whole_object_eval (the pipeline)",
    )
    ap.add_argument(
        "--cache", type=Path, default=Path("training/runs/whole_object_cache"), help="cache folder"
    )
    ap.add_argument("--seed", type=int, default=0, help="random prompts' seed (make-bag's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    data = load_instances(args.data, args.held_out)
    paths = resolve_model_paths(str(args.model or ""), str(args.box_model or ""), whole_object=True)
    point = OnnxBackend(paths["point"], threads=args.threads)
    box = OnnxBackend(paths["box"], threads=args.threads)
    runs = CachedRuns(data, point, box, CropSettings())
    names = "-".join(Path(p).name for p in args.data)
    cache_dir: Path = args.cache

    def cache_for(point_path: Path) -> Path:
        digests = f"{_digest(point_path)}-{_digest(paths['box'])}"
        return cache_dir / f"{names}-{args.held_out}-{digests}.pkl"

    cache = cache_for(paths["point"])
    runs.load(cache)
    other = None
    if args.against is not None:
        other = CachedRuns(data, OnnxBackend(args.against, threads=args.threads), box, runs.crop)
        other.load(cache_for(args.against))
    scout = None
    if args.first_model is not None:
        scout_model = OnnxBackend(args.first_model, threads=args.threads)
        scout = CachedRuns(data, scout_model, box, runs.crop)
        scout.load(cache_for(args.first_model))
    clicks = make_clicks(data, args.seed)
    print(
        f"{len(data.instances)} instances, {len(data.images)} images; "
        f"{paths['point'].name} + {paths['box'].name}",
        flush=True,
    )
    first: dict[str, np.ndarray] = {}
    for text in args.tries:
        start, before = time.perf_counter(), runs.runs
        ious: dict[str, np.ndarray] = {}
        result = evaluate_settings(runs, clicks, parse_settings(text), ious)
        result["try"] = text
        if first:
            result["vs_first"] = {p: paired_difference(ious[p], first[p]) for p in ious}
        else:
            first = ious
            if other is not None:
                result["vs_against"] = {"model": args.against.name} | paired_against(
                    other, clicks, parse_settings(text), ious
                )
            if scout is not None:
                result["vs_first_model"] = {"model": args.first_model.name} | paired_first_model(
                    runs, scout, clicks, parse_settings(text), ious
                )
        result["new_runs"] = runs.runs - before
        result["s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(result), flush=True)
    if args.oracle:
        print(json.dumps({"oracle": oracle(runs, clicks, WholeObjectSettings().fill)}), flush=True)
    if args.diagnose:
        print(json.dumps({"diagnose": diagnose(runs, clicks, parse_settings(args.tries[0]))}))
    runs.save(cache)
    if other is not None:
        other.save(cache_for(args.against))
    if scout is not None:
        scout.save(cache_for(args.first_model))
    if args.verify:
        from training.whole_object_eval import evaluate

        settings = CropSettings(whole_object=WholeObjectSettings())
        mine = evaluate_settings(runs, clicks, WholeObjectSettings())
        for prompt in clicks:
            ref = evaluate(data, {"point": point, "box": box}, settings, prompt, args.seed)
            got = mine[prompt]
            assert isinstance(got, dict)
            ok = abs(float(ref["miou"]) - float(got["miou"])) < 1e-3
            print(
                f"verify {prompt}: pipeline {ref['miou']}, here {got['miou']}: "
                f"{'same' if ok else 'DIFFERENT'}"
            )
            if not ok:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
