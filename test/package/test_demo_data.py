"""The demo photographs the package ships: 11 COCO val2017 images whose licence allows
redistribution, their annotations and their attribution, installed with the package."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from picosam2_ros.bags.coco import CocoDataset, load_image
from picosam2_ros.resources import (
    DEMO_ANNOTATIONS,
    DEMO_DATA_DIR,
    DEMO_IMAGES,
    demo_image_ids,
)
from picosam2_ros.tools.arguments import image_id_set

ROOT = Path(__file__).resolve().parents[2]
#: COCO licence ids that allow redistribution with attribution: CC BY 2.0, CC BY-SA 2.0.
REDISTRIBUTABLE = {
    4: "http://creativecommons.org/licenses/by/2.0/",
    5: "http://creativecommons.org/licenses/by-sa/2.0/",
}
DEMO_IDS = {6818, 41888, 58636, 226111, 252219, 303818, 331352, 397133, 403385, 456496, 458054}


def test_every_photograph_is_redistributable_and_attributed() -> None:
    data = json.loads(DEMO_ANNOTATIONS.read_text(encoding="utf-8"))
    licences = {entry["id"]: entry["url"] for entry in data["licenses"]}
    attribution = (DEMO_DATA_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert {image["id"] for image in data["images"]} == DEMO_IDS == demo_image_ids()
    assert image_id_set("demo") == DEMO_IDS
    for image in data["images"]:
        assert licences[image["license"]] == REDISTRIBUTABLE[image["license"]]
        row = next(
            line
            for line in attribution.splitlines()
            if line.startswith(f"| {image['file_name']} |")
        )
        assert image["flickr_url"] in row
        assert REDISTRIBUTABLE[image["license"]] in row
        path = DEMO_IMAGES / image["file_name"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() in row
        assert load_image(path, image["width"], image["height"]) is not None
    assert sorted(p.name for p in DEMO_IMAGES.iterdir()) == sorted(
        image["file_name"] for image in data["images"]
    )


def test_annotations_are_a_usable_coco_file() -> None:
    dataset = CocoDataset.load(DEMO_ANNOTATIONS)
    every = set(dataset.categories)
    instances = [
        inst
        for image in dataset.images.values()
        for inst in dataset.instances(image, category_ids=every)
    ]
    assert len(instances) == 67
    assert len({inst.object_id for inst in instances}) == 67


def test_setup_py_installs_the_demo_files() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    patterns = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    package = ROOT / "picosam2_ros"
    shipped = [p for p in DEMO_DATA_DIR.rglob("*") if p.is_file()]
    for path in shipped:
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in patterns), relative
