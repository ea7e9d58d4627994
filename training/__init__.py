"""Training, evaluation and export of PicoSAM2 segmenters (an optional extra: needs
PyTorch, see requirements/train.txt; never imported by the ROS nodes)."""
