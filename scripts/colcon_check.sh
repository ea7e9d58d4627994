#!/usr/bin/env bash
# Proves the package builds as a ROS 2 package: colcon build in a temporary workspace
# (messages, Python package with its models and demo photographs, executables under lib/,
# launch/ and config/ under share/),
# then imports the generated messages from that install and checks what ros2 run and
# ros2 launch would look for. COLCON_WS names the workspace to build and keep (the launch
# tests run the launch files from it); without it a temporary one is removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
if [ -n "${COLCON_WS:-}" ]; then
  ws=$COLCON_WS
  rm -rf "$ws/src" "$ws/build" "$ws/install" "$ws/log"
else
  ws=$(mktemp -d)
  trap 'rm -rf "$ws"' EXIT
fi
mkdir -p "$ws/src/picosam2_ros"
# The package's files as a clone holds them (tracked, plus new files not ignored).
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | tar --null -cf - -T -) | tar -xf - -C "$ws/src/picosam2_ros"

export AMENT_PREFIX_PATH="$venv"
export PATH="$venv/bin:$PATH"
echo "== colcon build in $ws"
(cd "$ws" && colcon build --event-handlers console_direct- \
   --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF >build.log 2>&1) \
  || { tail -60 "$ws/build.log"; exit 1; }

inst="$ws/install/picosam2_ros"
for f in lib/picosam2_ros/segmenter_node share/picosam2_ros/config/segmenter.yaml \
         share/picosam2_ros/launch/segmenter.launch.py share/picosam2_ros/package.xml \
         share/ament_index/resource_index/packages/picosam2_ros; do
  [ -e "$inst/$f" ] || { echo "missing from the colcon install: $f"; exit 1; }
done
[ -x "$inst/lib/picosam2_ros/segmenter_node" ] || { echo "segmenter_node is not executable"; exit 1; }

# Import from the colcon install only: a clean environment plus install/setup.bash.
env -i HOME="$HOME" PATH="$venv/bin:/usr/bin:/bin" bash -c "
  set -e
  source '$ws/install/setup.bash'
  cd /
  python - <<'PY'
import picosam2_ros, picosam2_ros.msg as m, picosam2_ros.srv as s
import picosam2_ros.nodes.segmenter_node as node
from ament_index_python.packages import get_package_prefix
# The modules must come from the colcon install, not from the development tree.
for module in (picosam2_ros, m, s, node, m._prompt):
    assert '/install/picosam2_ros/' in module.__file__, module.__file__
assert get_package_prefix('picosam2_ros').endswith('/install/picosam2_ros')
# The demo photographs, their annotations and attribution install with the package.
from picosam2_ros.resources import DEMO_ANNOTATIONS, DEMO_DATA_DIR, DEMO_IMAGES, demo_image_ids
assert '/install/picosam2_ros/' in str(DEMO_ANNOTATIONS), DEMO_ANNOTATIONS
assert (DEMO_DATA_DIR / 'ATTRIBUTION.md').is_file()
photos = sorted(p.stem for p in DEMO_IMAGES.glob('*.jpg'))
assert len(photos) == len(demo_image_ids()) == 11, photos
print('colcon install OK:', m.Prompt.__name__, m.Segmentation.__name__, s.RemoveObject.__name__,
      s.SegmentEverything.__name__, f'and {len(photos)} demo photographs')
PY
"
echo "== colcon build check passed"
