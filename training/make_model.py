"""One command from the data folders to a shipped model: train, export fp32 + int8 ONNX,
evaluate both on the validation folder, draw the training curve, copy the files.

    python -m training.make_model --data ../shared/data/train-real/coco2017 \\
        ../shared/data/train-real/davis2016 --protocol point --minutes 82 \\
        --val ../shared/data/coco-val2017-sample --run training/runs/point \\
        --models picosam2_ros/models

Every step is also its own command (training.train, training.export, training.evaluate,
training.report); this runs them in order with the settings of the shipped model.
``--resume`` continues an interrupted training run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from training import evaluate, export, report, train
from training.crops import check_protocol
from training.data import load_coco_folders
from training.model import load_weights


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibrate_run_box_prior(run: Path, data: list[str], threads: int) -> float:
    """The box-prior weight for a run's final model on box crops, chosen on the run's held-out
    TRAINING images (the same split training calibrates its threshold on); written to
    RUN/box_prior.json."""
    config = json.loads((run / "config.json").read_text())
    fraction = float(config["args"]["dev_fraction"])
    dev = load_coco_folders(
        data,
        min_area=int(config["args"]["min_area"]),
        image_filter=lambda f, r: train.is_dev_image(f, r, fraction),
    )
    es = evaluate.build_eval_set(dev, "box")
    predict = evaluate.torch_predictor(load_weights(run / "final.pt"), threads)
    weight, scores = evaluate.calibrate_box_prior(predict, es)
    record = {"weight": weight, "held_out_instances": len(es), "miou_by_weight": scores}
    (run / "box_prior.json").write_text(json.dumps(record, indent=1))
    print(f"box prior weight {weight:g} (held-out mIoU by weight: {scores})", flush=True)
    return weight


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.make_model", description=__doc__)
    ap.add_argument("--data", nargs="+", required=True, help="COCO-format training folder(s)")
    ap.add_argument("--protocol", required=True, help="point or box")
    ap.add_argument("--minutes", type=float, help="training wall-clock budget")
    ap.add_argument(
        "--samples",
        type=int,
        default=0,
        help="training budget in samples instead (training.train --samples: the same "
        "training on a CPU or a GPU)",
    )
    ap.add_argument("--val", nargs="*", default=[], help="COCO-format validation folder(s)")
    ap.add_argument("--run", type=Path, help="run folder (default training/runs/PROTOCOL)")
    ap.add_argument("--models", type=Path, help="copy the ONNX files and curve here")
    ap.add_argument(
        "--name",
        help="file name stem (default picosam2_PROTOCOL; the zoom model: picosam2_point_zoom)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--zoom",
        type=float,
        default=0.0,
        help="point protocol: share of zoom-window samples (training.train --zoom), also "
        "the share of zoom windows among the int8 calibration crops",
    )
    ap.add_argument(
        "--blend",
        nargs=2,
        metavar=("OTHER", "SHARE"),
        help="export: move the trained weights SHARE of the way to another fp32 export "
        "(training.export --blend), e.g. the model a continuation started from",
    )
    ap.add_argument("--max-steps", type=int, default=0, help=argparse.SUPPRESS)
    args, extra = ap.parse_known_args(argv)
    protocol = check_protocol(args.protocol)
    if (args.minutes is None) == (args.samples <= 0):
        raise SystemExit("give one training budget: --minutes or --samples")
    budget = (
        ["--samples", str(args.samples)] if args.samples > 0 else ["--minutes", str(args.minutes)]
    )
    run = args.run or Path("training/runs") / protocol
    name = args.name or f"picosam2_{protocol}"
    train_argv = [
        "--data", *args.data, "--protocol", protocol, "--out", str(run),
        *budget, "--seed", str(args.seed),
        "--threads", str(args.threads), "--max-steps", str(args.max_steps),
        "--zoom", str(args.zoom), *extra,
    ]  # fmt: skip
    if args.val:
        train_argv += ["--val", *args.val, "--val-protocols", protocol]
    if args.resume:
        train_argv.append("--resume")
    train.main(train_argv)
    export_argv = [
        "--checkpoint", str(run / "final.pt"), "--out", str(run / "export"), "--name", name,
        "--calib-data", *args.data, "--protocol", protocol, "--seed", str(args.seed),
        "--zoom", str(args.zoom),
    ]  # fmt: skip
    # Every model gets a box-prior weight: the point model also decodes box prompts
    # wherever no box model is set (the segmenter's fallback, the camera's one network).
    weight = calibrate_run_box_prior(run, args.data, args.threads)
    export_argv += ["--box-prior-weight", str(weight)]
    if args.blend:
        export_argv += ["--blend", *args.blend]
    export.main(export_argv)
    files = [run / "export" / f"{name}.onnx", run / "export" / f"{name}_int8.onnx"]
    curve = run / "training_curve.png"
    if args.val:
        evaluate.main(
            ["--model", *map(str, files), "--data", *args.val, "--protocol", "both",
             "--json", str(run / "eval.json")]
        )  # fmt: skip
        report.main(
            ["--run", str(run), "--eval", str(run / "eval.json"), "--png", str(curve),
             "--md", str(run / "tables.md")]
        )  # fmt: skip
    else:
        report.main(["--run", str(run), "--png", str(curve)])
    if args.models:
        args.models.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, args.models / f.name)
        shutil.copy2(curve, args.models / f"{name}_training_curve.png")
    for f in files:
        print(f"{sha256(f)}  {f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
