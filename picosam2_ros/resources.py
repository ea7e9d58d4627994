"""Files the package ships: the default models, the demo photographs and the config
folder."""

from __future__ import annotations

import json
from pathlib import Path

#: Installed with the Python package (setup.py package_data; ament_python_install_package).
MODELS_DIR = Path(__file__).resolve().parent / "models"

#: The demo's real photographs: 11 COCO val2017 images under CC BY / CC BY-SA with their
#: COCO annotations (``annotations.json``, ``images/``) and their licences and attribution
#: (``ATTRIBUTION.md``). Installed with the Python package like the models.
DEMO_DATA_DIR = Path(__file__).resolve().parent / "data" / "coco_demo"
DEMO_ANNOTATIONS = DEMO_DATA_DIR / "annotations.json"
DEMO_IMAGES = DEMO_DATA_DIR / "images"

#: The default model file per prompt kind; see models/MODEL_CARD.md.
DEFAULT_MODEL_FILES = {
    "point": "picosam2_point.onnx",
    "box": "picosam2_box.onnx",
}
#: The default point model for the whole-object decoding (core.whole_object): trained on
#: zoom windows, it segments the centre object at any scale.
WHOLE_OBJECT_MODEL_FILE = "picosam2_point_zoom.onnx"


def resolve_model_paths(
    point_model: str, box_model: str, whole_object: bool = False
) -> dict[str, Path]:
    """The model file per prompt kind: the configured path when set, else the shipped
    default (for point prompts under the whole-object decoding, the shipped zoom model
    when there is one). Box prompts use the point model when no box model is configured
    or shipped."""
    if point_model:
        point = Path(point_model).expanduser()
    else:
        point = MODELS_DIR / DEFAULT_MODEL_FILES["point"]
        zoom = MODELS_DIR / WHOLE_OBJECT_MODEL_FILE
        if whole_object and zoom.is_file():
            point = zoom
    if box_model:
        box = Path(box_model).expanduser()
    else:
        shipped_box = MODELS_DIR / DEFAULT_MODEL_FILES["box"]
        box = shipped_box if shipped_box.is_file() else point
    return {"point": point, "box": box}


def config_file(name: str) -> Path:
    """A file of the package's config/ folder: from the installed share directory when
    the package is installed by colcon, else from the source tree."""
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        installed = Path(get_package_share_directory("picosam2_ros")) / "config" / name
        if installed.is_file():
            return installed
    except (ImportError, PackageNotFoundError, OSError, ValueError):
        pass
    return Path(__file__).resolve().parent.parent / "config" / name


def demo_image_ids() -> frozenset[int]:
    """COCO image ids of the demo photographs. Validation figures leave them out
    (``--exclude-images demo``): they are the demo, not held-out data.

    Raises OSError or ValueError when the shipped annotation file is missing or broken.
    """
    data = json.loads(DEMO_ANNOTATIONS.read_text(encoding="utf-8"))
    return frozenset(int(image["id"]) for image in data["images"])
