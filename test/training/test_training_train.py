"""A short real training run on a tiny generated COCO-format set: the loss falls, the
run resumes, the outputs are usable; the CLI rejects bad input with clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import make_coco_folder, picosam2_with_statistics

from training import report
from training import train as train_mod
from training.data import load_coco_folders
from training.evaluate import build_eval_set, evaluate_baselines
from training.model import load_weights

REPO = Path(__file__).resolve().parents[2]


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data = make_coco_folder(root / "train", n_images=10, seed=1)
    val = make_coco_folder(root / "val", n_images=3, seed=2)
    run = root / "run"
    common = [
        "--data", str(data), "--protocol", "point", "--out", str(run), "--minutes", "5",
        "--seed", "0", "--threads", "2", "--batch", "6", "--lr", "3e-3", "--log-every", "1",
        "--dev-fraction", "0", "--val", str(val), "--val-every", "100", "--warmup", "0",
    ]  # fmt: skip
    assert train_mod.main([*common, "--max-steps", "14"]) == 0
    first = _records(run, "train")
    assert train_mod.main([*common, "--max-steps", "15", "--resume"]) == 0
    return run, first


def test_short_training_lowers_the_loss(tiny_run) -> None:
    _run, first = tiny_run
    losses = [r["loss"] for r in first]
    assert len(losses) == 14
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.05, losses


def test_resume_continues_where_it_stopped(tiny_run) -> None:
    run, _first = tiny_run
    steps = [r["step"] for r in _records(run, "train")]
    assert steps == [*range(1, 15), 15]
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["step"] == 15 and ck["samples"] == 15 * 6


def test_run_outputs(tiny_run) -> None:
    run, _ = tiny_run
    val = _records(run, "val")
    assert val and "val_point_miou" in val[0]
    final = _records(run, "final")[-1]
    assert 0.0 <= final["val_point_miou"] <= 1.0
    model = load_weights(run / "final.pt")
    assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 1, 96, 96)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["parameters"] == sum(p.numel() for p in model.parameters())


def test_unknown_protocol_exits_nonzero(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.train", "--data", str(tmp_path), "--protocol",
         "polygon", "--out", str(tmp_path / "r"), "--minutes", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "unknown protocol 'polygon'" in proc.stderr


def test_resume_without_checkpoint(tmp_path) -> None:
    data = make_coco_folder(tmp_path / "d", n_images=2)
    with pytest.raises(SystemExit, match="no checkpoint"):
        train_mod.main(
            ["--data", str(data), "--protocol", "point", "--out", str(tmp_path / "r"),
             "--minutes", "1", "--resume"]
        )  # fmt: skip


def test_resume_from_another_architecture(tmp_path) -> None:
    data = make_coco_folder(tmp_path / "d", n_images=2)
    run = tmp_path / "r"
    run.mkdir()
    torch.save({"architecture": "unet-big", "model": {}}, run / "last.pt")
    with pytest.raises(SystemExit, match="architecture 'unet-big'"):
        train_mod.main(
            ["--data", str(data), "--protocol", "point", "--out", str(run), "--minutes", "1",
             "--resume", "--dev-fraction", "0"]
        )  # fmt: skip


def test_init_starts_from_the_given_weights(tiny_run, tmp_path) -> None:
    """--init (the box model's warm start from the point model): with a zero learning
    rate the weights after one step are exactly the given checkpoint's."""
    run, _ = tiny_run
    data = make_coco_folder(tmp_path / "train", n_images=4, seed=3)
    out = tmp_path / "box"
    argv = [
        "--data", str(data), "--protocol", "box", "--out", str(out), "--minutes", "5",
        "--threads", "2", "--batch", "4", "--lr", "0", "--dev-fraction", "0",
        "--warmup", "0", "--max-steps", "1", "--init", str(run / "final.pt"),
    ]  # fmt: skip
    assert train_mod.main(argv) == 0
    given = dict(load_weights(run / "final.pt").named_parameters())
    after = torch.load(out / "last.pt", weights_only=False)["model"]
    assert set(given) <= set(after)
    for name, value in given.items():
        torch.testing.assert_close(after[name], value.detach(), rtol=0, atol=0, msg=name)
    fresh = torch.load(run / "last.pt", weights_only=False)["model"]
    assert any(not torch.equal(fresh[n], after[n]) for n in given)


def test_box_training_through_the_box_prior_records_its_weight(tmp_path) -> None:
    data = make_coco_folder(tmp_path / "train", n_images=4, seed=5)
    out = tmp_path / "box"
    argv = [
        "--data", str(data), "--protocol", "box", "--out", str(out), "--minutes", "5",
        "--threads", "2", "--batch", "4", "--dev-fraction", "0", "--max-steps", "3",
        "--box-prior-weight", "6", "--val", str(data), "--val-protocols", "box",
    ]  # fmt: skip
    assert train_mod.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["box_prior_weight"] == 6.0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = next(r for r in records if r["kind"] == "final")
    # Validation decodes with the prior: after 3 steps the decoded masks are about the
    # ellipse of these box-shaped objects (0.89 here; the same run with weight 0: 0.32).
    assert final["val_box_miou"] > 0.6
    # A box run's records draw a curve (its baseline line needs --eval; tested below).
    png = out / "curve.png"
    assert report.main(["--run", str(out), "--png", str(png)]) == 0
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("protocol", "expected"), [("point", "whole crop"), ("box", "inscribed ellipse")]
)
def test_training_curve_baseline_is_the_protocols_strongest(tmp_path, protocol, expected) -> None:
    data = load_coco_folders([str(make_coco_folder(tmp_path / "d", n_images=3, seed=7))])
    es = build_eval_set(data, protocol)
    baselines = evaluate_baselines(es)
    ev = {"protocols": {protocol: {"n": len(es), "baselines": baselines, "models": {}}}}
    name, miou = report.baseline_to_beat(ev, protocol)
    assert name == expected
    assert miou == pytest.approx(baselines[expected]["miou"])
    other = "box" if protocol == "point" else "point"
    assert report.baseline_to_beat(ev, other) is None


def test_a_sample_budget_with_worker_processes(tmp_path) -> None:
    """--samples ends the run after exactly that many samples (the schedule runs over
    them, whatever the speed), batches come from --workers processes, --dev-every
    logs held-out figures, and the zoom and hard-pixel options are taken."""
    data = make_coco_folder(tmp_path / "train", n_images=24, seed=3)
    run = tmp_path / "run"
    argv = [
        "--data", str(data), "--protocol", "point", "--out", str(run), "--samples", "48",
        "--seed", "0", "--threads", "1", "--batch", "6", "--log-every", "2",
        "--dev-fraction", "0.3", "--workers", "2", "--dev-every", "24", "--zoom", "0.9",
        "--zoom-fill", "0.05", "1.3", "--hard-weight", "2", "--warmup-samples", "12",
        "--frame-windows", "0.4", "--frame-fill", "0.1", "0.6",
    ]  # fmt: skip
    assert train_mod.main(argv) == 0
    train = _records(run, "train")
    assert train[-1]["samples"] == 48 and train[-1]["step"] == 8
    assert [r["samples"] for r in _records(run, "dev")] == [24, 48]
    assert all(0.0 <= r["dev_point_miou"] <= 1.0 for r in _records(run, "dev"))
    # The learning rate decays over the sample budget: cosine to 2% at its end.
    lrs = [r["lr"] for r in train]
    assert lrs[-1] < 0.1 * max(lrs)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["augment"]["zoom_min"] == 0.05 and cfg["augment"]["zoom_max"] == 1.3
    assert cfg["augment"]["frame_windows"] == 0.4 and cfg["augment"]["frame_max"] == 0.6
    assert load_weights(run / "final.pt")(torch.zeros(1, 3, 96, 96)).shape == (1, 1, 96, 96)
    # The curve of such a run is drawn over samples, with the held-out figures.
    png = tmp_path / "curve.png"
    assert report.main(["--run", str(run), "--png", str(png)]) == 0
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "extra",
    [
        [],  # neither --minutes nor --samples
        ["--samples", "-5"],
        ["--samples", "10", "--workers", "-1"],
        ["--minutes", "0"],
    ],
)
def test_budget_arguments_are_checked(tmp_path, extra) -> None:
    with pytest.raises(SystemExit) as exc:
        train_mod.parse_args(
            ["--data", str(tmp_path), "--protocol", "point", "--out", str(tmp_path), *extra]
        )
    assert exc.value.code != 0


def test_make_model_takes_a_sample_budget(tmp_path) -> None:
    """One command from the data folder to the exported files, with its budget in samples
    (the batch workers and other training options pass through to training.train)."""
    from training import make_model
    from training.export import export_onnx

    data = make_coco_folder(tmp_path / "train", n_images=24, seed=4)
    run, models = tmp_path / "run", tmp_path / "models"
    # The weights a continuation started from, to blend the exported ones with.
    start = export_onnx(picosam2_with_statistics(2), tmp_path / "start.onnx")
    argv = [
        "--data", str(data), "--protocol", "point", "--samples", "24", "--run", str(run),
        "--models", str(models), "--name", "tiny", "--threads", "1", "--zoom", "0.5",
        "--workers", "1", "--batch", "6", "--dev-fraction", "0.3",
        "--blend", str(start), "0.7",
    ]  # fmt: skip
    assert make_model.main(argv) == 0
    assert _records(run, "final")[-1]["samples"] == 24
    blend = json.loads((run / "export" / "tiny_export.json").read_text())["fp32"]["blend"]
    assert blend["share"] == 0.7 and blend["with"] == str(start)
    assert json.loads((run / "config.json").read_text())["args"]["workers"] == 1
    for name in ("tiny.onnx", "tiny_int8.onnx", "tiny_training_curve.png"):
        assert (models / name).stat().st_size > 0, name
    for budget in ([], ["--samples", "24", "--minutes", "1"]):
        with pytest.raises(SystemExit, match="one training budget"):
            make_model.main(["--data", str(data), "--protocol", "point", *budget])
