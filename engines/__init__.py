"""Bundle -> deployable engines.

runtime/   what a board runs (manifest, ONNX Runtime and TensorRT backends, latency); never imports torch
build/     what the workstation runs (ONNX export, fp16 / int8, calibration, PyTorch reference); never shipped
cli.py, check.py, reference.py, tensorrt_build.py: `vitfleet engines ...`, the engine-vs-reference check and the
TensorRT plans built on the Jetson itself (they need the board's own GPU).
"""
