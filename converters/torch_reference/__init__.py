"""PyTorch references for the TF techniques, run on the onnx2torch copy of the same ONNX file.

Each module mirrors one ``tf_impl`` module: plain PyTorch transcriptions of the paper's
equations (or the field's library, such as ``lpips``), used by the cross-check tests and the
benchmarks to show that TF and PyTorch reach the same numbers.
"""
