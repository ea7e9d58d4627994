"""``picosam2-evaluate``: the PicoSAM2 benchmark on a COCO-derived bag, offline.

Reads the bag (``picosam2-make-bag``) with ``DatasetBag``, segments every frame with
that frame's prompts through ``core.pipeline.segment_frame`` and onnxruntime (the same
code and settings the segmenter node runs: point crops of 96 px, box prompts through
the box model with margin 1.1), and scores the results with the same
``picosam2_ros.evaluation`` code the evaluator node uses, so the per-instance IoUs of
this tool and of the ROS path (replay -> segmenter -> evaluator) are identical.
No ROS graph is involved.

With ``--results FILE.json --annotations A.json`` it scores a COCO-style result file
(for example the PicoSAM2 authors' own predictions) on that data set's instances
instead, with the same metrics and report (``picosam2_ros.evaluation.results_file``).

With ``--everything`` the prompts are ignored: every frame goes through
``core.everything.segment_everything`` (a grid of point prompts, hierarchical by
default) and the masks are scored class-agnostically against every ground-truth instance
(``picosam2_ros.evaluation.everything``: recall at IoU 0.5 and 0.75, COCO-style AR@100,
false masks per image, by object size).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from picosam2_ros.backends.base import InferenceBackend, ModelLoadError
from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.bags.coco import CocoDataset, CocoFormatError
from picosam2_ros.bags.layout import TOPIC_GROUND_TRUTH, PromptSpec
from picosam2_ros.bags.reader import BagError, DatasetBag
from picosam2_ros.bags.typestore import MessageDefinitionsNotFoundError
from picosam2_ros.core.everything import EverythingError, EverythingSettings, segment_everything
from picosam2_ros.core.geometry import MODEL_INPUT_SIZE
from picosam2_ros.core.pipeline import CropSettings, segment_frame
from picosam2_ros.core.prompts import LABEL_FOREGROUND, ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.evaluation.everything import format_everything_summary
from picosam2_ros.evaluation.everything_session import (
    EverythingEvaluator,
    write_everything_report,
)
from picosam2_ros.evaluation.masks import CroppedMask
from picosam2_ros.evaluation.protocol import CropProtocol
from picosam2_ros.evaluation.report import format_summary
from picosam2_ros.evaluation.results_file import (
    ResultsAccounting,
    ResultsFileError,
    load_results,
    score_results,
)
from picosam2_ros.evaluation.session import EvaluationSession
from picosam2_ros.resources import resolve_model_paths
from picosam2_ros.tools.arguments import (
    EXCLUDE_IMAGES_HELP,
    image_id_set,
    non_negative_int,
    positive_int,
    unit_interval,
)

#: Exit codes.
EXIT_OK = 0
EXIT_NOTHING_EVALUATED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
Metrics, on the paper's protocol (IoU inside the 96-pixel crop around each point
prompt, or a box prompt's square crop) and on full frames: mIoU and paper_map, the
PicoSAM2 paper's "mAP@[.5:.95]" (the share of instances with IoU >= t, averaged over
t = 0.50:0.05:0.95; NOT COCO AP); per category, per object size (small < 32^2,
medium < 96^2 px, large), missing instances, latency percentiles and throughput.
The report (report.json) and plots (iou_histogram.png, category_miou.png,
overlays.png) go to --report.

--results FILE.json --annotations A.json scores a COCO-style result file instead of
running a model: a JSON list of {"image_id", "segmentation" (RLE or polygons),
optional "score" and "annotation_id"}. A result without annotation_id is the k-th
non-crowd annotation (file order) of its image, as the PicoSAM2 authors' files are
ordered. A segmentation of the image's size is a full-frame mask; any other size (the
authors' 96x96) is a mask over the instance's paper crop (96 px around the paper's
prompt point), predicted on the crop resized to that size: its paper-crop IoU is
measured at that size, as the paper does, and it is resized onto the crop for the
full-frame IoU. Results that match no instance are counted in the report.

Validation figures on coco-val2017-sample leave out the demo photographs the package
ships: --exclude-images demo.

--everything ignores the prompts and segments every frame with a grid of point
prompts (hierarchical unless --dense); it reports, over all ground-truth instances and
by size, the share matched by some mask at IoU >= 0.5 and 0.75, COCO-style AR@100
(one-to-one matching, IoU 0.50:0.05:0.95, categories ignored), masks and false masks
(best IoU < 0.5) per image, and the grid crops run per frame, into everything.json.

exit status: 0 evaluated; 1 nothing could be evaluated; 2 bad input (bag missing,
unreadable, empty or without the expected topics; model missing or not loadable; bad
option); 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="picosam2-evaluate",
        description="Evaluate PicoSAM2 on a COCO-derived bag (picosam2-make-bag) offline: "
        "segment every prompt with onnxruntime and report mIoU and the paper's mAP on the "
        "paper's crop protocol and on full frames; or (--results) score a COCO-style result "
        "file on a COCO-format data set with the same metrics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", type=Path, metavar="BAG", help="bag folder, .mcap or .db3")
    source.add_argument(
        "--results",
        type=Path,
        metavar="FILE.json",
        help="score this COCO-style result file on --annotations instead of running a model",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        metavar="A.json",
        help="with --results: the COCO-format data set the results are scored on",
    )
    parser.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="with --results: the data set's image folder, for the overlay grid (optional)",
    )
    parser.add_argument(
        "--exclude-images",
        nargs="+",
        type=image_id_set,
        default=[],
        metavar="ID|FILE|demo",
        help=EXCLUDE_IMAGES_HELP,
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="M",
        help="ONNX model for point prompts (default: the shipped point model; with "
        "--whole-object the shipped zoom model)",
    )
    parser.add_argument(
        "--box-model",
        type=Path,
        default=None,
        metavar="M",
        help="ONNX model for box prompts (default: the shipped box model, else --model)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("evaluation_report"),
        metavar="DIR",
        help="folder for report.json and the plots (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="onnxruntime intra-op threads (default: %(default)s)",
    )
    parser.add_argument(
        "--max-images",
        type=positive_int,
        default=None,
        metavar="N",
        help="evaluate only the first N images of the bag",
    )
    parser.add_argument(
        "--overlays",
        type=non_negative_int,
        default=8,
        metavar="K",
        help="best and worst instances shown in overlays.png (0 = no grid; default: %(default)s)",
    )
    parser.add_argument(
        "--whole-object",
        action="store_true",
        help="point prompts return the whole object (the segmenter's whole_object "
        "parameter: point-model windows of growing size find it, the last one's mask is "
        "the answer; at most 3 runs per point); "
        "default: the paper's single 96-px crop",
    )
    parser.add_argument("--no-plots", action="store_true", help="write report.json only")
    everything = parser.add_argument_group("segment everything (--everything)")
    everything.add_argument(
        "--everything",
        action="store_true",
        help="segment every frame without prompts and report class-agnostic recall",
    )
    defaults = EverythingSettings()
    everything.add_argument(
        "--points-per-side",
        type=positive_int,
        default=defaults.points_per_side,
        metavar="N",
        help="dense grid points along the longer side (default: %(default)s)",
    )
    everything.add_argument(
        "--dense",
        action="store_true",
        help="run the whole dense grid (no hierarchical second pass)",
    )
    everything.add_argument(
        "--sparse-stride",
        type=positive_int,
        default=defaults.sparse_stride,
        metavar="K",
        help="hierarchical first pass: every K-th grid point per axis (default: %(default)s)",
    )
    everything.add_argument(
        "--confident-score",
        type=unit_interval,
        default=defaults.confident_score,
        metavar="S",
        help="first-pass masks at least this stable cover their area (default: %(default)s)",
    )
    everything.add_argument(
        "--min-score",
        type=unit_interval,
        default=defaults.min_score,
        metavar="S",
        help="drop masks with a lower stability score (default: %(default)s)",
    )
    everything.add_argument(
        "--nms-iou",
        type=unit_interval,
        default=defaults.nms_iou,
        metavar="T",
        help="drop a mask overlapping a better one at this IoU (default: %(default)s)",
    )
    everything.add_argument(
        "--max-masks",
        type=positive_int,
        default=defaults.max_masks,
        metavar="N",
        help="most masks per frame (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"picosam2-evaluate: error: {message}", file=sys.stderr)
    return code


def object_prompt(object_id: int, spec: PromptSpec) -> ObjectPrompt:
    """A bag prompt as the segmenter node builds it from the ``Prompt`` message."""
    if spec.point is not None:
        points = np.array([spec.point], dtype=np.float64)
        labels = np.array([LABEL_FOREGROUND], dtype=np.uint8)
        return ObjectPrompt(object_id, points, labels)
    return ObjectPrompt(object_id, np.empty((0, 2)), np.empty((0,), dtype=np.uint8), box=spec.box)


def load_backends(
    model: Path | None, box_model: Path | None, threads: int, whole_object: bool = False
) -> dict[str, InferenceBackend]:
    """Point and box backends (one shared when both paths are the same file); the
    default point model depends on ``whole_object`` (resources.resolve_model_paths).

    Raises ModelLoadError with a message naming the file and what to do.
    """
    paths = resolve_model_paths(str(model or ""), str(box_model or ""), whole_object)
    for kind, path in paths.items():
        if not path.is_file():
            default = (kind == "point" and model is None) or (
                kind == "box" and box_model is None and model is None
            )
            hint = (
                " (the default model is not shipped in this installation; pass --model)"
                if default
                else ""
            )
            raise ModelLoadError(f"{kind} model not found: {path}{hint}")
    point = OnnxBackend(paths["point"], threads=threads)
    box = point if paths["box"] == paths["point"] else OnnxBackend(paths["box"], threads=threads)
    return {"point": point, "box": box}


def everything_settings(args: argparse.Namespace) -> EverythingSettings:
    return EverythingSettings(
        points_per_side=args.points_per_side,
        hierarchical=not args.dense,
        sparse_stride=args.sparse_stride,
        confident_score=args.confident_score,
        min_score=args.min_score,
        nms_iou=args.nms_iou,
        max_masks=args.max_masks,
    )


def run_everything(args: argparse.Namespace, backends: dict[str, InferenceBackend]) -> int:
    """``--everything``: segment every frame without prompts, score class-agnostically."""
    settings = everything_settings(args)
    excluded = frozenset().union(*args.exclude_images)
    evaluator = EverythingEvaluator()
    crops = frames_skipped = 0
    segment_s = 0.0
    try:
        settings.check()
        with DatasetBag(args.bag) as bag:
            for frame in tqdm(bag.frames(), desc="frames", unit="frame", disable=args.no_progress):
                if args.max_images is not None and evaluator.frames_evaluated >= args.max_images:
                    break
                if frame.image_id in excluded or frame.rgb is None or not frame.has_ground_truth:
                    frames_skipped += 1
                    continue
                t0 = time.perf_counter()
                result = segment_everything(frame.rgb, "rgb8", backends, settings)
                segment_s += time.perf_counter() - t0
                crops += result.crops_run
                truths = {
                    oid: CroppedMask.from_frame(gt.mask) for oid, gt in frame.ground_truth.items()
                }
                evaluator.add_ground_truth(
                    frame.stamp_ns, frame.width, frame.height, truths, frame.image_id
                )
                evaluator.add_result(
                    frame.stamp_ns,
                    result.frame.width,
                    result.frame.height,
                    [CroppedMask(o.crop, o.mask) for o in result.frame.objects],
                    [o.score for o in result.frame.objects],
                )
    except (BagError, MessageDefinitionsNotFoundError, EverythingError) as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    frames = evaluator.frames_evaluated
    fields = {
        "tool": "picosam2-evaluate --everything",
        "bag": str(Path(args.bag).resolve()),
        "models": {"point": dict(getattr(backends["point"], "info", {}))},
        "settings": {
            "points_per_side": settings.points_per_side,
            "hierarchical": settings.hierarchical,
            "sparse_stride": settings.sparse_stride,
            "confident_score": settings.confident_score,
            "min_score": settings.min_score,
            "nms_iou": settings.nms_iou,
            "max_masks": settings.max_masks,
            "max_crop_fill": settings.max_crop_fill,
            "crop_side_px": settings.crop_side_px,
        },
        "threads": args.threads,
        "exclude_images": sorted(excluded),
        "frames_skipped": frames_skipped,
        "crops_per_frame": crops / frames if frames else None,
        "ms_per_frame": 1000.0 * segment_s / frames if frames else None,
    }
    report = evaluator.report(fields)
    summary = report["summary"]
    try:
        path = write_everything_report(report, args.report)
    except OSError as exc:
        return _fail(EXIT_BAD_INPUT, f"cannot write the report to {args.report}: {exc}")
    print(format_everything_summary(summary))
    if frames:
        strategy = "dense" if args.dense else "hierarchical"
        print(
            f"  {report['crops_per_frame']:.1f} crops and {report['ms_per_frame']:.1f} ms per "
            f"frame ({strategy}, {settings.points_per_side} points per side)"
        )
    print(f"wrote {path}")
    if summary["instances"] == 0:
        return _fail(EXIT_NOTHING_EVALUATED, "no instance could be evaluated")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        backends = load_backends(args.model, args.box_model, args.threads, args.whole_object)
    except ModelLoadError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    if args.everything:
        return run_everything(args, backends)
    settings = CropSettings(
        point_side_px=MODEL_INPUT_SIZE,
        whole_object=WholeObjectSettings() if args.whole_object else None,
    )
    session = EvaluationSession(
        CropProtocol(point_side=settings.point_side_px, box_margin=settings.box_margin),
        overlay_count=0 if args.no_plots else args.overlays,
    )
    started = time.perf_counter()
    segment_s = 0.0
    frames_done = 0
    frames_excluded = 0
    prompts_without_point = 0
    excluded = frozenset().union(*args.exclude_images)
    try:
        with DatasetBag(args.bag) as bag:
            if bag.info is not None:
                session.evaluator.set_dataset_info(bag.info)
            elif excluded:
                return _fail(
                    EXIT_BAD_INPUT,
                    f"{args.bag} has no /dataset/info, so its images' ids are unknown: "
                    "--exclude-images needs a bag written by picosam2-make-bag",
                )
            total = len(bag.info.image_ids) if bag.info is not None else None
            if total is None:
                total = bag.bag.topics[TOPIC_GROUND_TRUTH].count
            if args.max_images is not None:
                total = min(total, args.max_images)
            bar = tqdm(
                total=total,
                desc="frames",
                unit="frame",
                disable=True if args.no_progress else None,
            )
            for frame in bag.frames():
                if bag.info is not None and bag.info.image_ids.get(frame.stamp_ns) in excluded:
                    frames_excluded += 1
                    continue
                if args.max_images is not None and frames_done >= args.max_images:
                    break
                frames_done += 1
                bar.update(1)
                if frame.has_ground_truth:
                    session.add_dataset_frame(frame)
                if frame.rgb is None or not frame.has_ground_truth:
                    continue  # counted: its ground truth stays without a result
                prompts = []
                for oid, spec in sorted(frame.prompts.items()):
                    if spec is None:
                        prompts_without_point += 1
                        continue
                    prompts.append(object_prompt(oid, spec))
                t0 = time.perf_counter()
                result = segment_frame(frame.rgb, "rgb8", prompts, backends, settings)
                elapsed = time.perf_counter() - t0
                segment_s += elapsed
                session.add_frame_result(
                    frame.stamp_ns, result, image=frame.rgb, processing_ms=elapsed * 1000.0
                )
                bar.set_postfix(instances=len(session.evaluator.records))
            bar.close()
            stats = bag.stats
            info = bag.info
            describe = bag.bag.describe()
    except (BagError, MessageDefinitionsNotFoundError) as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    wall_s = time.perf_counter() - started
    instances = len(session.evaluator.records)
    source: dict[str, Any] = {
        "tool": "picosam2-evaluate",
        "bag": str(Path(args.bag).resolve()),
        "bag_topics": describe,
        "models": {kind: dict(getattr(b, "info", {})) for kind, b in backends.items()},
        "crop_settings": {
            "point_side_px": settings.point_side_px,
            "box_margin": settings.box_margin,
            "threshold": settings.threshold,
            "whole_object": (
                None if settings.whole_object is None else asdict(settings.whole_object)
            ),
        },
        "threads": args.threads,
        "max_images": args.max_images,
        "frames_read": frames_done,
        "exclude_images": sorted(excluded),
        "frames_excluded": frames_excluded,
        "bag_reading": {
            "incomplete_frames": stats.incomplete_frames,
            "frames_without_image": stats.frames_without_image,
            "prompts_without_ground_truth": stats.prompts_without_ground_truth,
            "ground_truth_without_prompt": stats.ground_truth_without_prompt,
            "duplicate_messages": stats.duplicate_messages,
            "prompts_without_foreground_point_or_box": prompts_without_point,
        },
        "dataset_counts": info.raw.get("counts") if info is not None else None,
        "segment_s": segment_s,
        "instances_per_s_segmentation_only": instances / segment_s if segment_s > 0 else None,
    }
    try:
        report, files = session.write(
            args.report, source=source, wall_s=wall_s, plots=not args.no_plots
        )
    except OSError as exc:
        return _fail(EXIT_BAD_INPUT, f"cannot write the report to {args.report}: {exc}")
    print(format_summary(report))
    print("wrote " + ", ".join(str(f) for f in files))
    if instances == 0:
        return _fail(EXIT_NOTHING_EVALUATED, "no instance could be evaluated")
    return EXIT_OK


def run_results(args: argparse.Namespace) -> int:
    """``--results``: score a COCO-style result file on ``--annotations``."""
    if args.annotations is None:
        return _fail(EXIT_BAD_INPUT, "--results needs --annotations (the COCO-format data set)")
    if args.model is not None or args.box_model is not None:
        return _fail(EXIT_BAD_INPUT, "--model and --box-model apply to --bag, not to --results")
    excluded = frozenset().union(*args.exclude_images)
    started = time.perf_counter()
    try:
        dataset = CocoDataset.load(args.annotations)
        results, sha256 = load_results(args.results)
        accounting = ResultsAccounting(str(Path(args.results).resolve()), sha256)
        session = EvaluationSession(overlay_count=0 if args.no_plots else args.overlays)
        score_results(dataset, results, session, accounting, excluded, args.images)
    except (FileNotFoundError, CocoFormatError, ResultsFileError) as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    source: dict[str, Any] = {
        "tool": "picosam2-evaluate --results",
        "annotations": str(Path(args.annotations).resolve()),
        "annotations_sha256": dataset.sha256,
        "results": accounting.json(),
        "exclude_images": sorted(excluded),
    }
    try:
        report, files = session.write(
            args.report,
            source=source,
            wall_s=time.perf_counter() - started,
            plots=not args.no_plots,
        )
    except OSError as exc:
        return _fail(EXIT_BAD_INPUT, f"cannot write the report to {args.report}: {exc}")
    print(accounting.summary())
    print(format_summary(report))
    print("wrote " + ", ".join(str(f) for f in files))
    if not session.evaluator.records:
        return _fail(EXIT_NOTHING_EVALUATED, "no result matched an instance of the data set")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_results(args) if args.results is not None else run(args)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; no report written")


if __name__ == "__main__":
    sys.exit(main())
