"""What the workstation runs to turn a bundle into engines: ONNX export, fp16 / int8 (symmetric QDQ) with
calibration, the PyTorch reference and the demo's cached engines. Needs torch; deploy never ships it."""
