"""``picosam2-make-bag``: exit codes, messages and summary on good and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from picosam2_ros.bags import writer
from picosam2_ros.bags.reader import read_dataset
from picosam2_ros.tools.make_bag import (
    EXIT_BAD_INPUT,
    EXIT_NOTHING_WRITTEN,
    EXIT_OK,
    main,
)

from .conftest import SyntheticCoco

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _args(coco: SyntheticCoco, out: Path, *extra: str) -> list[str]:
    return [
        "--annotations",
        str(coco.annotations),
        "--images",
        str(coco.images),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_help_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "picosam2_ros.tools.make_bag", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--annotations", "--storage", "--prompt", "--compressed", "exit status"):
        assert option in result.stdout


def test_writes_and_reports_what_it_skipped(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bag"
    assert main(_args(synthetic_coco, out, "--storage", "sqlite3")) == EXIT_OK
    text = capsys.readouterr().out
    assert f"wrote {out} (sqlite3," in text
    assert "3 images, 6 instances" in text
    assert "images: 7 in the annotation file, 3 written" in text
    assert "skipped 1: image file missing" in text
    assert "skipped 1: image file unreadable" in text
    assert "skipped 1: image size differs" in text
    assert "skipped 1: no annotations" in text
    assert "instances: 16 annotations, 6 written" in text
    assert "skipped 1: crowd annotations" in text
    assert "skipped 2: empty masks" in text
    assert "skipped 3: their image was skipped" in text
    assert "image file missing (1): missing.png" in text
    _, frames, _ = read_dataset(out)
    assert len(frames) == 3


def test_malformed_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    (tmp_path / "images").mkdir()
    out = tmp_path / "bag"
    argv = ["--annotations", str(bad), "--images", str(tmp_path / "images"), "--out", str(out)]
    assert main(argv) == EXIT_BAD_INPUT
    assert "not valid JSON" in capsys.readouterr().err
    assert not out.exists()


def test_missing_annotation_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    argv = [
        "--annotations",
        str(tmp_path / "none.json"),
        "--images",
        str(tmp_path / "images"),
        "--out",
        str(tmp_path / "bag"),
    ]
    assert main(argv) == EXIT_BAD_INPUT
    assert "annotation file not found" in capsys.readouterr().err


def test_missing_image_folder(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _args(synthetic_coco, tmp_path / "bag")
    argv[argv.index("--images") + 1] = str(tmp_path / "no-images")
    assert main(argv) == EXIT_BAD_INPUT
    assert "image folder not found" in capsys.readouterr().err


def test_output_exists_is_left_alone(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(_args(synthetic_coco, out)) == EXIT_BAD_INPUT
    assert "output already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_nothing_to_write(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bag"
    assert main(_args(synthetic_coco, out, "--categories", "unused")) == EXIT_NOTHING_WRITTEN
    err = capsys.readouterr().err
    assert "nothing to write" in err
    assert "categories not selected" in err
    assert not out.exists()


def test_unknown_category(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(synthetic_coco, tmp_path / "bag", "--categories", "cat")) == EXIT_BAD_INPUT
    assert "unknown category 'cat'; the file has: disc, square" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra", [["--max-images", "0"], ["--min-area", "-1"], ["--seed", "-2"], ["--prompt", "x"]]
)
def test_bad_options_exit_2(
    synthetic_coco: SyntheticCoco, tmp_path: Path, extra: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(_args(synthetic_coco, tmp_path / "bag", *extra))
    assert exit_info.value.code == 2


def test_failure_while_writing_leaves_no_bag(
    synthetic_coco: SyntheticCoco, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = writer.DatasetBagWriter.write_frame
    calls = []

    def failing(self: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["image_id"])
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, **kwargs)

    monkeypatch.setattr(writer.DatasetBagWriter, "write_frame", failing)
    out = tmp_path / "bag"
    assert main(_args(synthetic_coco, out)) == EXIT_NOTHING_WRITTEN
    assert not out.exists()


def test_exclude_images(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, *rest = synthetic_coco.written_images
    out = tmp_path / "bag"
    assert main(_args(synthetic_coco, out, "--exclude-images", str(first), "123456")) == EXIT_OK
    text = capsys.readouterr().out
    assert "skipped 1: excluded (--exclude-images)" in text
    excluded_anns = sum(1 for a in synthetic_coco.data["annotations"] if a["image_id"] == first)
    assert f"skipped {excluded_anns}: their image was excluded (--exclude-images)" in text
    info, frames, _ = read_dataset(out)
    assert sorted(info.image_ids.values()) == sorted(rest)
    assert len(frames) == len(rest)
    assert info.raw["options"]["exclude_images"] == [first]


def test_exclude_images_bad_values(
    synthetic_coco: SyntheticCoco, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value, words in (("-3", "an image id is >= 0"), ("no_such.json", "neither an image id")):
        with pytest.raises(SystemExit) as exc:
            main(_args(synthetic_coco, tmp_path / "bag", "--exclude-images", value))
        assert exc.value.code == EXIT_BAD_INPUT
        assert words in capsys.readouterr().err
    not_coco = tmp_path / "list.json"
    not_coco.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(_args(synthetic_coco, tmp_path / "bag", "--exclude-images", str(not_coco)))
    assert "top level must be a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()
