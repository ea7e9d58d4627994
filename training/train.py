"""Train PicoSAM2 on COCO-format instance data under the point or box protocol.

    python -m training.train --data DIR [DIR ...] --protocol point --out RUN_DIR \\
        --minutes 60 --seed 0 --threads 2 [--val VAL_DIR] [--resume]

The run is bounded by wall-clock time (``--minutes``, validation included), with a
cosine learning-rate schedule over that budget, so it finishes when planned; training
speed only changes how many steps fit. ``--samples N`` bounds it by training samples
instead (the schedule runs over the samples), so the same command trains the same
amount on this CPU or on a GPU (``--device cuda``, batches made by ``--workers``
processes). ``--resume`` continues from RUN_DIR/last.pt with the remaining budget.
RUN_DIR receives:

- ``metrics.jsonl``: one JSON object per log line (``"kind": "train"``) and per
  validation (``"kind": "val"``, both protocols on ``--val``)
- ``last.pt``: resumable checkpoint (model, EMA, optimiser, schedule position, RNG)
- ``final.pt``: the EMA weights, with the decision threshold calibrated on a held-out
  split of the TRAINING data folded into the head's bias (the model's mask is logit > 0)
- ``config.json``: arguments, augmentation settings, data counts
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from picosam2_ros.core.box_prior import apply_box_prior
from training.augment import AugmentConfig, make_batch
from training.crops import PROTOCOLS, check_protocol, normalise
from training.data import MIN_MASK_AREA, InstanceSet, load_coco_folders
from training.evaluate import EvalSet, build_eval_set, evaluate_predictor
from training.losses import Teacher, decode_with_box_prior, distillation_loss, supervised_loss
from training.model import (
    ARCHITECTURE,
    PicoSAM2,
    count_parameters,
    load_weights,
    weights_from_onnx,
)

#: Thresholds (logits) tried when calibrating on the held-out training split.
CALIBRATION_THRESHOLDS = np.round(np.arange(-2.0, 2.01, 0.25), 2)


def is_dev_image(folder: str, record: dict, fraction: float) -> bool:
    """Deterministic held-out split by image (file name hash); DAVIS frames are grouped
    by sequence (the name before the last underscore) so a sequence never straddles."""
    if fraction <= 0:
        return False
    key = str(record.get("file_name", record.get("id")))
    if "davis" in folder.lower() and "_" in key:
        key = key.rsplit("_", 1)[0]
    return (zlib.crc32(f"{folder}/{key}".encode()) % 10000) < fraction * 10000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train PicoSAM2 (1.26M-parameter depthwise-separable U-Net) on "
        "COCO-format folders under the point or box crop protocol.",
    )
    ap.add_argument("--data", nargs="+", required=True, help="COCO-format training folder(s)")
    ap.add_argument("--protocol", required=True, help="point (PicoSAM2 paper crop) or box")
    ap.add_argument("--out", type=Path, required=True, help="run directory")
    ap.add_argument("--minutes", type=float, help="wall-clock budget")
    ap.add_argument(
        "--samples",
        type=int,
        default=0,
        help="budget in training samples instead of minutes (the learning-rate schedule "
        "runs over them); with --minutes too, the minutes only stop a run early",
    )
    ap.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes making the batches (0: in the training loop, one random stream)",
    )
    ap.add_argument(
        "--hard-weight",
        type=float,
        default=0.0,
        help="hard-pixel weighting: each pixel's BCE weighted 1 + this x |p - target| "
        "(the current prediction's error, not differentiated), so the loss dwells on "
        "the pixels the model gets wrong",
    )
    ap.add_argument(
        "--dev-every",
        type=int,
        default=0,
        help="samples between evaluations of the EMA weights on the held-out TRAINING "
        "split (logged as kind 'dev'; a curve without a validation folder); 0 = none",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument(
        "--init",
        type=Path,
        help="start from the weights of this checkpoint (e.g. the point model's final.pt "
        "for the box model) or fp32 ONNX export (e.g. a shipped model) instead of a "
        "random initialisation",
    )
    ap.add_argument("--val", nargs="*", default=[], help="COCO-format validation folder(s)")
    ap.add_argument("--val-every", type=float, default=8.0, help="minutes between validations")
    ap.add_argument("--val-protocols", default="point", help="point, box or both")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up minutes")
    ap.add_argument("--warmup-samples", type=int, default=1000, help="warm-up with --samples")
    ap.add_argument("--ema", type=float, default=0.995, help="EMA decay (0 disables)")
    ap.add_argument("--min-area", type=int, default=MIN_MASK_AREA)
    ap.add_argument("--dev-fraction", type=float, default=0.05, help="held-out training share")
    ap.add_argument("--copy-paste", type=float, default=AugmentConfig.copy_paste)
    ap.add_argument("--prompt-jitter", type=float, default=AugmentConfig.prompt_jitter)
    for flag, ends, text in (
        ("--zoom-fill", ("zoom_min", "zoom_max"), "zoom windows: the object's extent fills a "
         "uniform share in [MIN, MAX] of them"),
        ("--frame-fill", ("frame_min", "frame_max"), "frame-sized zoom windows (--frame-windows): "
         "side / the frame's shorter side, log-uniform in [MIN, MAX]"),
    ):  # fmt: skip
        default = tuple(getattr(AugmentConfig, end) for end in ends)
        ap.add_argument(
            flag, type=float, nargs=2, default=default, metavar=("MIN", "MAX"), help=text
        )
    ap.add_argument(
        "--frame-windows",
        type=float,
        default=AugmentConfig.frame_windows,
        help="share of the zoom windows sized from the frame (a share of its shorter side, "
        "--frame-fill) instead of from the object: the "
        "whole-object search's windows before it knows the object's size",
    )
    ap.add_argument("--scale-prob", type=float, default=AugmentConfig.scale_prob)
    ap.add_argument(
        "--zoom",
        type=float,
        default=AugmentConfig.zoom,
        help="point protocol: share of samples cut as zoom windows (the object filling "
        "10-90%% of a window centred on a prompt anywhere on its mask) instead of the "
        "native 96-px crop; the whole-object decoding needs a model trained with it",
    )
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="bfloat16 autocast: about 3x faster on CPUs with native bf16 (AVX512-BF16/AMX), "
        "several times SLOWER on AVX2-only CPUs",
    )
    ap.add_argument(
        "--box-prior-weight",
        type=float,
        default=0.0,
        help="box protocol: train through the box-conditioned decoding with this weight "
        "(picosam2_ros.core.box_prior; 0 = plain logits)",
    )
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument(
        "--teacher", help="module:attribute of a Teacher (see training.losses) to distil from"
    )
    ap.add_argument("--distill-weight", type=float, default=0.5)
    ap.add_argument("--checkpoint-every", type=float, default=2.0, help="minutes")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N steps (tests)")
    ap.add_argument("--log-every", type=int, default=20, help="steps")
    args = ap.parse_args(argv)
    check_protocol(args.protocol)
    if args.val_protocols not in (*PROTOCOLS, "both"):
        raise SystemExit(f"unknown protocol {args.val_protocols!r} for --val-protocols")
    if args.minutes is None and args.samples <= 0:
        raise SystemExit("give --minutes or --samples")
    if args.minutes is not None and args.minutes <= 0:
        raise SystemExit("--minutes must be positive")
    if args.samples < 0 or args.workers < 0 or args.hard_weight < 0:
        raise SystemExit("--samples, --workers and --hard-weight must not be negative")
    if args.device != "cpu" and args.bf16:
        raise SystemExit("--bf16 is the CPU autocast; leave it out with --device")
    return args


def load_teacher(spec: str) -> Teacher:
    import importlib

    mod, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr or "teacher")
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"cannot load teacher {spec!r}: {exc}") from exc
    teacher = obj() if isinstance(obj, type) else obj
    if not isinstance(teacher, Teacher):
        raise SystemExit(f"teacher {spec!r} is not callable as Teacher(crops, protocol)")
    return teacher


class Ema:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        # One fused call per list: a kernel launch per tensor dominates a GPU step.
        ema_p = list(self.model.parameters())
        torch._foreach_mul_(ema_p, d)
        torch._foreach_add_(ema_p, [m.detach() for m in model.parameters()], alpha=1 - d)
        for e, m in zip(self.model.buffers(), model.buffers(), strict=True):
            e.copy_(m)


def next_batch_indices(
    rng: np.random.Generator, order: np.ndarray, pos: int, n: int, batch: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The next batch of a walk through random permutations of ``n`` instances (a new
    permutation when the current one has too few left; drawn with replacement when there
    are fewer instances than a batch): the indices, the permutation and the position."""
    if pos + batch > n:
        order, pos = rng.permutation(n), 0
    idx = order[pos : pos + batch] if n >= batch else rng.integers(n, size=batch)
    return idx, order, pos + batch


class BatchStream(torch.utils.data.IterableDataset):
    """Endless training batches for ``--workers``: each DataLoader worker walks its own
    permutations of the instances with its own random stream (``[seed, 2, worker]``), so
    a run is reproducible for a given number of workers."""

    def __init__(
        self, data: InstanceSet, protocol: str, batch: int, aug: AugmentConfig, seed: int
    ) -> None:
        self.data = data
        self.protocol = protocol
        self.batch = batch
        self.aug = aug
        self.seed = seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 2, info.id if info is not None else 0])
        n = len(self.data)
        order, pos = rng.permutation(n), 0
        while True:
            idx, order, pos = next_batch_indices(rng, order, pos, n, self.batch)
            b = make_batch(self.data, idx, self.protocol, rng, self.aug)
            yield torch.from_numpy(normalise(b.crops)), torch.from_numpy(b.masks), b.boxes


def make_predictor(model: torch.nn.Module, bf16: bool, channels_last: bool):
    device = next(model.parameters()).device

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(device)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(t).float().cpu().numpy()

    return run


def calibrate_threshold(
    model, es: EvalSet, bf16: bool, channels_last: bool, box_prior_weight: float = 0.0
) -> tuple[float, dict]:
    """The logit threshold maximising mIoU on ``es`` (held-out TRAINING instances), on
    the logits as the package decodes them (box crops with their box prior)."""
    pred = make_predictor(model, bf16, channels_last)
    logits = np.concatenate(
        [pred(normalise(es.crops[i : i + 64]))[:, 0] for i in range(0, len(es), 64)]
    )
    if es.protocol == "box" and box_prior_weight > 0.0:
        logits = apply_box_prior(logits, es.boxes, box_prior_weight)
    truth = es.masks
    scores = {}
    for t in CALIBRATION_THRESHOLDS:
        p = logits > t
        inter = (p & truth).sum((1, 2))
        union = (p | truth).sum((1, 2))
        scores[float(t)] = float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())
    best = max(scores, key=lambda k: scores[k])
    # Prefer 0 unless another threshold is clearly better on the held-out split.
    if scores[best] - scores[0.0] < 0.003:
        best = 0.0
    return best, scores


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def log(fh, record: dict) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()


def run_validation(
    model,
    val_sets: dict[str, EvalSet],
    bf16: bool,
    cl: bool,
    box_prior_weight: float = 0.0,
    prefix: str = "val",
) -> dict:
    pred = make_predictor(model, bf16, cl)
    out = {}
    for protocol, es in val_sets.items():
        r = evaluate_predictor(pred, es, box_prior_weight=box_prior_weight)
        out[f"{prefix}_{protocol}_miou"] = round(r["miou"], 4)
        out[f"{prefix}_{protocol}_paper_map"] = round(r["paper_map"], 4)
        for s, v in r["by_size"].items():
            out[f"{prefix}_{protocol}_{s}_miou"] = round(v["miou"], 4)
    return out


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    bf16, cl = args.bf16, not args.no_channels_last
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "last.pt"
    if args.resume and not ckpt_path.is_file():
        raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")

    frac = args.dev_fraction
    train_set: InstanceSet = load_coco_folders(
        args.data, min_area=args.min_area, image_filter=lambda f, r: not is_dev_image(f, r, frac)
    )
    dev_set = None
    if frac > 0:
        try:
            dev_set = load_coco_folders(
                args.data,
                min_area=args.min_area,
                image_filter=lambda f, r: is_dev_image(f, r, frac),
            )
        except SystemExit:
            dev_set = None  # too little data for a held-out split: no calibration
    dev_es = build_eval_set(dev_set, args.protocol) if dev_set is not None else None
    val_sets: dict[str, EvalSet] = {}
    if args.val:
        val_data = load_coco_folders(args.val, min_area=1)
        vps = list(PROTOCOLS) if args.val_protocols == "both" else [args.val_protocols]
        # The trained protocol first.
        vps.sort(key=lambda p: p != args.protocol)
        val_sets = {p: build_eval_set(val_data, p) for p in vps}

    aug = AugmentConfig(
        copy_paste=args.copy_paste,
        prompt_jitter=args.prompt_jitter,
        scale_prob=args.scale_prob,
        zoom=args.zoom,
        zoom_min=args.zoom_fill[0],
        zoom_max=args.zoom_fill[1],
        frame_windows=args.frame_windows,
        frame_min=args.frame_fill[0],
        frame_max=args.frame_fill[1],
    )
    teacher = load_teacher(args.teacher) if args.teacher else None
    if teacher is not None and args.workers:
        raise SystemExit("--teacher runs in the training loop: leave out --workers")
    device = torch.device(args.device)
    prior = args.box_prior_weight if args.protocol == "box" else 0.0

    model = PicoSAM2()
    if args.init is not None and not args.resume:
        # A warm start: the encoder already knows natural images, so a new protocol
        # trains on top of it instead of from scratch.
        if args.init.suffix == ".onnx":
            # An exported model (batch norms folded): re-parametrised on a batch of this
            # run's own training crops so that training mode starts from its function.
            calib_rng = np.random.default_rng([args.seed, 1])
            calib = make_batch(
                train_set,
                calib_rng.integers(len(train_set), size=256),
                args.protocol,
                calib_rng,
                aug,
            )
            init = weights_from_onnx(args.init, torch.from_numpy(normalise(calib.crops)))
        else:
            init = load_weights(args.init)
        model.load_state_dict(init.state_dict())
        print(f"initialised from {args.init}", flush=True)
    model = model.to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    ema = Ema(model, args.ema) if args.ema > 0 else None
    step, elapsed, samples = 0, 0.0, 0
    if args.resume:
        load_weights(ckpt_path)  # validates architecture, raises SystemExit otherwise
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if ema is not None and ck.get("ema") is not None:
            ema.model.load_state_dict(ck["ema"])
        step, elapsed, samples = ck["step"], ck["elapsed"], ck["samples"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step}, {elapsed / 60:.1f} min", flush=True)

    config = {
        "architecture": ARCHITECTURE,
        "parameters": count_parameters(model),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "augment": aug.to_dict(),
        "train_counts": train_set.counts,
        "train_skipped": train_set.skipped,
        "dev_counts": dev_set.counts if dev_set is not None else {},
        "val_counts": {p: len(es) for p, es in val_sets.items()},
        "torch": torch.__version__,
        "command": " ".join([Path(sys.executable).name, "-m", "training.train", *sys.argv[1:]]),
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    n_train = len(train_set)
    print(
        f"{n_train} training instances on {len(train_set.images)} images {train_set.counts}; "
        f"held-out {len(dev_es) if dev_es is not None else 0}; "
        f"validation {config['val_counts']}; {config['parameters']} parameters",
        flush=True,
    )

    by_samples = args.samples > 0
    budget = args.minutes * 60.0 if args.minutes is not None else math.inf
    warmup = args.warmup * 60.0

    def progress(t: float, n: int) -> float:
        return n / args.samples if by_samples else t / budget

    def lr_at(t: float, n: int) -> float:
        f = min(1.0, progress(t, n))
        if by_samples:
            w = min(1.0, (n + 1.0) / args.warmup_samples) if args.warmup_samples > 0 else 1.0
        else:
            w = min(1.0, (t + 1.0) / warmup) if warmup > 0 else 1.0
        return args.lr * w * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * f)))

    def state() -> dict:
        return {
            "architecture": ARCHITECTURE,
            "model": model.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None,
            "optimizer": opt.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "samples": samples,
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "protocol": args.protocol,
            "config": config,
        }

    fh = (out / "metrics.jsonl").open("a")
    eval_model = ema.model if ema is not None else model
    t_start = time.monotonic() - elapsed
    last_val = elapsed if args.resume else -1e9
    last_ckpt = elapsed
    running, run_n, t_log, s_log = 0.0, 0, time.monotonic(), samples
    order = rng.permutation(n_train)
    pos = 0
    batches = None
    if args.workers:
        stream = BatchStream(train_set, args.protocol, args.batch, aug, args.seed)
        loader = torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=args.workers,
            pin_memory=device.type == "cuda",
            prefetch_factor=4,
            persistent_workers=True,
        )
        batches = iter(loader)
    disable = not sys.stderr.isatty()
    if by_samples:
        bar = tqdm(total=args.samples, initial=samples, unit="sample", disable=disable)
    else:
        bar = tqdm(total=round(budget), initial=round(elapsed), unit="s", disable=disable)
    last_bar = samples if by_samples else elapsed
    model.train()
    while True:
        elapsed = time.monotonic() - t_start
        if val_sets and elapsed - last_val >= args.val_every * 60.0:
            r = run_validation(eval_model, val_sets, bf16, cl, prior)
            rec = {"kind": "val", "step": step, "samples": samples, "minutes": elapsed / 60, **r}
            log(fh, rec)
            print(json.dumps(rec), flush=True)
            model.train()
            last_val = time.monotonic() - t_start
        if (
            progress(elapsed, samples) >= 1.0
            or elapsed >= budget
            or (args.max_steps and step >= args.max_steps)
        ):
            break
        if batches is not None:
            x, masks_t, boxes_t = next(batches)
            boxes = np.asarray(boxes_t)
            y = masks_t[:, None].float()
            n_batch = len(boxes)
        else:
            idx, order, pos = next_batch_indices(rng, order, pos, n_train, args.batch)
            crops, masks, boxes = make_batch(train_set, idx, args.protocol, rng, aug)
            x = torch.from_numpy(normalise(crops))
            y = torch.from_numpy(masks[:, None].astype(np.float32))
            n_batch = len(idx)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = lr_at(elapsed, samples)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = decode_with_box_prior(model(x), boxes, prior)
        if teacher is not None:
            tl = torch.from_numpy(np.asarray(teacher(crops, args.protocol), dtype=np.float32))
            loss = distillation_loss(logits, y, tl, args.distill_weight)
        else:
            loss = supervised_loss(logits, y, args.hard_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        samples += n_batch
        if ema is not None:
            ema.update(model, step)
        running += float(loss.detach())
        run_n += 1
        if step % args.log_every == 0:
            now = time.monotonic()
            rec = {
                "kind": "train",
                "step": step,
                "samples": samples,
                "minutes": round((now - t_start) / 60, 3),
                "lr": round(lr_at(elapsed, samples), 6),
                "loss": round(running / run_n, 5),
                "samples_per_s": round((samples - s_log) / max(now - t_log, 1e-6), 2),
            }
            log(fh, rec)
            if disable:
                print(json.dumps(rec), flush=True)
            bar.set_postfix(loss=rec["loss"], sps=rec["samples_per_s"])
            running, run_n, t_log, s_log = 0.0, 0, now, samples
        if by_samples:
            bar.update(samples - last_bar)
            last_bar = samples
        else:
            bar.update(round(elapsed - last_bar))
            last_bar += round(elapsed - last_bar)
        if (
            args.dev_every
            and dev_es is not None
            and samples // args.dev_every > (samples - n_batch) // args.dev_every
        ):
            r = run_validation(eval_model, {args.protocol: dev_es}, bf16, cl, prior, "dev")
            log(fh, {"kind": "dev", "step": step, "samples": samples, **r})
            model.train()
        if elapsed - last_ckpt >= args.checkpoint_every * 60.0:
            save_checkpoint(ckpt_path, state())
            last_ckpt = elapsed
    bar.close()
    elapsed = time.monotonic() - t_start
    save_checkpoint(ckpt_path, state())

    # Final model: EMA weights, threshold calibrated on the held-out training split.
    final = copy.deepcopy(eval_model).to("cpu").eval()
    threshold, scores = 0.0, {}
    if dev_es is not None and len(dev_es) >= 20:
        threshold, scores = calibrate_threshold(final, dev_es, bf16, cl, prior)
        if threshold != 0.0:
            with torch.no_grad():
                final.head.bias -= threshold
    rec = {
        "kind": "final",
        "step": step,
        "samples": samples,
        "minutes": elapsed / 60,
        "threshold": threshold,
        "dev_miou_by_threshold": scores,
    }
    if val_sets:
        rec.update(run_validation(final, val_sets, bf16, cl, prior))
    log(fh, rec)
    print(json.dumps(rec), flush=True)
    fh.close()
    final_state = {
        "architecture": ARCHITECTURE,
        "model": final.to(memory_format=torch.contiguous_format).state_dict(),
        "ema": None,
        "protocol": args.protocol,
        "threshold_folded": threshold,
        "step": step,
        "samples": samples,
        "config": config,
    }
    save_checkpoint(out / "final.pt", final_state)
    return rec


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
