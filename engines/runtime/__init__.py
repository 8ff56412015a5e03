"""What a board runs: the sha256-checked manifest, the engine backends (ONNX Runtime, TensorRT) behind one small
interface, and the latency probe. Imports without torch; deploy ships this package."""
