"""training.coco_subset: a COCO-format folder less some images, readable as a dataset."""

from __future__ import annotations

import json

from training_fixtures import make_coco_folder

from training import coco_subset
from training.data import load_coco_folders


def test_subset_drops_the_images_and_their_annotations(tmp_path) -> None:
    src = make_coco_folder(tmp_path / "src", n_images=5, seed=4)
    out = tmp_path / "out"
    assert coco_subset.main(["--src", str(src), "--out", str(out), "--exclude", "2", "4"]) == 0
    data = json.loads((out / "annotations.json").read_text())
    assert [img["id"] for img in data["images"]] == [1, 3, 5]
    assert {a["image_id"] for a in data["annotations"]} == {1, 3, 5}
    full, kept = load_coco_folders([str(src)]), load_coco_folders([str(out)])
    assert len(kept.images) == 3 and 0 < len(kept) < len(full)


def test_unknown_image_ids_are_refused(tmp_path, capsys) -> None:
    src = make_coco_folder(tmp_path / "src", n_images=2, seed=4)
    assert (
        coco_subset.main(["--src", str(src), "--out", str(tmp_path / "o"), "--exclude", "9"]) == 2
    )
    assert "image ids not in" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
