"""Bundle -> deployable engines: ONNX export, fp16 / int8 (symmetric QDQ), TensorRT plans built on the
board, one small runtime interface (ONNX Runtime, PyTorch, TensorRT), a sha256 sidecar manifest and the
engine-vs-PyTorch check.

Board-side modules (manifest, runtime with the onnxruntime backend) import without torch.
"""
