"""The IMX500 camera path: where prompts become sensor ROIs and sensor outputs become masks.

No rclpy here. Pure numpy: ``machine`` (the per-frame state machine: which prompt a
frame's output belongs to, each object's latest result, the next ROI), ``sensor`` (main
stream <-> full-sensor pixels, prompt -> inference ROI), ``scheduler`` (prompts taking
turns on the one ROI and the settle rule that attributes frames to prompts), ``output``
(CnnOutputTensor -> logits -> mask pasted into the main stream), ``calibration``
(camera_info from a calibration file). ``api`` opens the camera through picamera2 (or
the emulator); ``emulator`` stands in for picamera2 and the sensor when there is no
camera.
"""
