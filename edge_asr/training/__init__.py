"""Training: the model zoo (`nets`), training with validation and early stopping
(`train`), export to ONNX with a parity check (`export`) and accuracy on a data split
(`evaluate`). Needs the [train] extra (PyTorch); evaluate needs onnxruntime only."""
