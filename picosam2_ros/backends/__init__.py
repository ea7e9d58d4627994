"""Where PicoSAM2 runs: onnxruntime on the host (the IMX500 runs it on the sensor)."""
