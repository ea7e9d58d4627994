#!/usr/bin/env bash
# Creates .venv-imx500, the separate environment of the IMX500 export chain
# (training/export_imx500.py): Sony's model-compression-toolkit (post-training
# quantization for the IMX500), the edge-mdt-tpc target platform capabilities and the
# imx500-converter (imxconv-pt), with the versions pinned in requirements/imx500.txt.
# They pin onnx and onnxruntime older than the development environment's, so they never
# go into .venv. The converter's back end runs on Java 17: when no Java 17 or newer is on
# PATH, it is installed from Debian's packages (root only; otherwise the script stops and
# says so).
#
#   bash scripts/setup_imx500_env.sh        # idempotent: skips pip when nothing changed
#   .venv-imx500/bin/python -m training.export_imx500 --help
set -euo pipefail
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv-imx500}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
req=requirements/imx500.txt

java_major() {
  # Major version of the java on PATH (0 when there is none).
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

if [ "$(java_major)" -lt 17 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing a Java 17 runtime (imxconv-pt's back end runs on the JVM)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "imxconv-pt needs a Java 17 runtime on PATH; install it first," >&2
    echo "e.g. sudo apt-get install openjdk-17-jre-headless" >&2
    exit 1
  fi
fi
echo "== java: $(java -version 2>&1 | head -1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
stamp="$VENV/.imx500-setup"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "== $VENV is up to date with $req"
else
  echo "== installing $req into $VENV (a few minutes)"
  "$py" -m pip install --quiet --disable-pip-version-check -r "$req" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  "$py" -m pip check --disable-pip-version-check
  echo "$want" >"$stamp"
fi

# Smoke test: the tools import (through the export module, which works around the
# torchvision build) and the converter's entry point runs.
"$py" -m training.export_imx500 --check-tools
"$VENV/bin/imxconv-pt" --help >/dev/null
echo "== $VENV is ready: $VENV/bin/python -m training.export_imx500 --help"
