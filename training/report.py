"""Training curve (PNG) and Markdown tables for a model card, from a run directory and
the JSON written by ``python -m training.evaluate --json``.

    python -m training.report --run RUN_DIR --eval EVAL_JSON --png curve.png [--md tables.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Per protocol, the trivial baseline a model must beat (training.evaluate.baseline_masks).
STRONGEST_BASELINE = {"point": "whole crop", "box": "inscribed ellipse"}


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"no metrics.jsonl in {run}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def baseline_to_beat(ev: dict, protocol: str) -> tuple[str, float] | None:
    """(name, mIoU) of the strongest trivial baseline under ``protocol`` in an
    ``evaluate --json`` record; None when that protocol was not evaluated."""
    res = ev["protocols"].get(protocol)
    name = STRONGEST_BASELINE.get(protocol, "")
    if not res or name not in res["baselines"]:
        return None
    return name, float(res["baselines"][name]["miou"])


def plot_curve(
    records: list[dict],
    png: Path,
    baseline: tuple[str, float] | None = None,
    title: str = "PicoSAM2 training",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    # A run without a validation folder logs held-out training figures instead ("dev").
    val = val or [
        {k.replace("dev_", "val_"): v for k, v in r.items()} for r in records if r["kind"] == "dev"
    ]
    # A sample budget (training.train --samples) is drawn over samples: its minutes
    # depend on the machine it ran on.
    by_samples = bool(val) and "minutes" not in val[0]
    x = "samples" if by_samples else "minutes"
    fig, ax1 = plt.subplots(figsize=(7, 4), dpi=110)
    ax1.plot([r[x] for r in train], [r["loss"] for r in train], color="tab:blue", lw=1)
    ax1.set_xlabel("training samples" if by_samples else "minutes (wall clock, CPU)")
    ax1.set_ylabel("training loss (BCE + Dice)", color="tab:blue")
    ax2 = ax1.twinx()
    keys = [k for k in (val[0] if val else {}) if k.endswith("_miou") and k.count("_") == 2]
    for k in keys:
        label = k.replace("val_", "held-out " if by_samples else "val_").replace("_", " ")
        ax2.plot([r[x] for r in val], [r[k] for r in val], marker="o", label=label)
    final = [r for r in records if r["kind"] == "final"]
    for k in keys:
        if final and k in final[-1]:
            ax2.plot([final[-1][x]], [final[-1][k]], marker="*", ms=12, color="black")
    if baseline is not None:
        ax2.axhline(baseline[1], ls="--", color="grey", label=f"baseline: {baseline[0]}")
    ax2.set_ylabel("held-out training mIoU" if by_samples else "validation mIoU")
    ax2.set_ylim(0, max(0.6, *(r[k] for r in val for k in keys)) if val else 0.6)
    ax2.legend(loc="lower right")
    ax1.set_title(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def markdown_tables(ev: dict) -> str:
    lines: list[str] = []
    for protocol, res in ev["protocols"].items():
        lines += [f"### {protocol} protocol ({res['n']} instances)", ""]
        rows = {**{Path(k).name: v for k, v in res["models"].items()}}
        rows.update({f"baseline: {k}": v for k, v in res["baselines"].items()})
        sizes = ["small", "medium", "large"]
        n_by = next(iter(rows.values()))["by_size"]
        head = " | ".join(f"{s} (n={n_by[s]['n']})" for s in sizes if s in n_by)
        lines += [f"| model | mIoU | paper mAP | {head} |", "|---" * (3 + len(n_by)) + "|"]
        for name, r in rows.items():
            cells = " | ".join(f"{r['by_size'][s]['miou']:.3f}" for s in sizes if s in r["by_size"])
            lines.append(f"| {name} | {r['miou']:.3f} | {r['paper_map']:.3f} | {cells} |")
        lines.append("")
        models = list(res["models"].items())
        if models:
            names = [Path(k).name for k, _ in models]
            lines += [
                "| category | n | " + " | ".join(names) + " |",
                "|---|---|" + "---|" * len(names),
            ]
            for cat, v in models[0][1]["by_category"].items():
                cells = " | ".join(f"{m['by_category'][cat]['miou']:.3f}" for _, m in models)
                lines.append(f"| {cat} | {v['n']} | {cells} |")
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.report", description=__doc__)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval", type=Path, help="evaluate --json output")
    ap.add_argument("--png", type=Path, required=True)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args(argv)
    records = read_metrics(args.run)
    config_path = args.run / "config.json"
    run_args = json.loads(config_path.read_text())["args"] if config_path.is_file() else {}
    protocol = run_args.get("protocol", "point")
    val = [Path(v).name for v in run_args.get("val") or []]
    title = f"PicoSAM2 {protocol} training" + (f" (val: {', '.join(val)})" if val else "")
    baseline = None
    ev = None
    if args.eval:
        ev = json.loads(args.eval.read_text())
        baseline = baseline_to_beat(ev, protocol)
    plot_curve(records, args.png, baseline, title)
    if ev is not None and args.md:
        args.md.write_text(markdown_tables(ev))
    return 0


if __name__ == "__main__":
    sys.exit(main())
