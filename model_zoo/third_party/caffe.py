"""Caffe->ONNX-style conversions of a zoo model: NHWC, BGR, 0..255 minus a mean, no-op
nodes, a final Softmax."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..registry import FileContract
from .truth import (
    CAFFE_MEAN_BGR,
    Truth,
    data_input,
    drop_unused_initializers,
    expected_onnx2torch,
    height_width,
    unique_name,
)

# --------------------------------------------------------------------------- Caffe style
_SPRINKLE = ("Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "AveragePool",
             "GlobalAveragePool")
_PERMS = ((0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2), (0, 2, 1, 3), (0, 3, 2, 1))
_PATTERNS = (("cast", "pair"), ("pair", "cast"), ("cast", "pair", "cast"),
             ("pair", "cast", "pair"))


def caffe_input(pixels_nchw_rgb01: np.ndarray, mean_bgr: Sequence[float] = CAFFE_MEAN_BGR
                ) -> np.ndarray:
    """A Caffe-style file's input from RGB pixels in [0, 1], NCHW: NHWC BGR 0..255 - mean.

    Example:
        >>> [round(float(v), 3) for v in caffe_input(np.zeros((1, 3, 2, 2)))[0, 0, 0]]
        [-103.53, -116.28, -123.675]
    """
    contract = FileContract("NHWC", "BGR", 255.0, tuple(mean_bgr), (1.0, 1.0, 1.0), "logits")
    return contract.model_input(pixels_nchw_rgb01)


def caffe_style(base: str = "resnet18", input_size: int | Sequence[int] | None = None,
                seed: int = 0, *, cache_dir: str | os.PathLike[str] | None = None
                ) -> tuple[onnx.ModelProto, Truth]:
    """A zoo model made to look like a Caffe->ONNX conversion.

    Input ``data``: NHWC float, BGR pixels in 0..255 minus ``CAFFE_MEAN_BGR`` (std 1; see
    :func:`caffe_input`). Inside: Transpose NHWC->NCHW, the base network with the RGB->BGR
    swap and the 1 / (255 std_c) factor folded into its first convolution, after every 4-D
    Conv/BN/Relu/Add/pool output one or two no-op Casts (float -> float) and cancelling
    Transpose pairs (perm, then its inverse; order and perms seeded), and a final Softmax
    ``prob`` after the logits. ``softmax(base(normalised x)) == file(caffe_input(x))`` to
    1e-5 is checked on every build (onnxruntime). The file's opset is the base's (17).
    ``cache_dir``: the model-zoo cache the base model is loaded from (default: the usual one).

    Example:
        >>> proto, truth = caffe_style("resnet20_cifar")       # doctest: +SKIP
        >>> truth.mean                                         # doctest: +SKIP
        (103.53, 116.28, 123.675)
    """
    from .. import load
    from ..registry import get_spec

    spec = get_spec(base)
    if spec.num_classes is None:
        raise ValueError(f"{base} is not a classifier")
    shape = spec.input_shape
    if input_size is not None:
        h, w = height_width(input_size)
        if any(d is not None and d != v for d, v in zip(shape[2:], (h, w), strict=True)):
            raise ValueError(f"{base} takes {shape[2:]} inputs, not {(h, w)}")
    else:
        h, w = shape[2], shape[3]
    if h is None or w is None:
        raise ValueError(f"{base} has a dynamic input size: pass input_size")
    prep = spec.preprocessing
    if tuple(prep.value_range) != (0.0, 1.0):
        raise ValueError(f"{base}: pixel range {prep.value_range} is not [0, 1]")
    base_proto = onnx.load(os.fspath(load(base, cache_dir=cache_dir)))
    proto = _caffeify(base_proto, prep.mean, prep.std, seed)
    mean_bgr = tuple(round(255.0 * m, 6) for m in prep.mean[::-1])
    diff = caffe_parity(proto, base_proto, prep.mean, prep.std, (h, w), mean_bgr)
    if not diff <= 1e-5:
        raise AssertionError(f"caffe-style {base}: differs from softmax(base) by {diff:.2e}")
    n_cast = sum(n.op_type == "Cast" for n in proto.graph.node)
    n_tr = sum(n.op_type == "Transpose" for n in proto.graph.node)
    truth = Truth("caffe-style", "NHWC", "BGR", 255.0, mean_bgr, (1.0, 1.0, 1.0), (h, w),
                  "probabilities", int(spec.num_classes),
                  expected_onnx2torch("caffe-style", base),
                  f"wraps model_zoo {base} ({'pretrained' if spec.default_pretrained else 'random'}"
                  f" weights); {n_cast} no-op Casts, {n_tr} Transposes (1 NHWC->NCHW, the rest "
                  "cancelling pairs); the user subtracts the BGR mean, the file divides by "
                  "255 std inside its first convolution")
    return proto, truth


def caffe_parity(caffe: onnx.ModelProto | str | os.PathLike[str],
                 base: onnx.ModelProto | str | os.PathLike[str], mean: Sequence[float],
                 std: Sequence[float], input_size: tuple[int, int],
                 mean_bgr: Sequence[float] = CAFFE_MEAN_BGR, batch: int = 2, seed: int = 0
                 ) -> float:
    """max |softmax(base((x - mean) / std)) - caffe(caffe_input(x))| over random pixels x,
    both run by onnxruntime.

    Example:
        >>> caffe_parity(proto, model_zoo.load("resnet18"), IMAGENET_MEAN, IMAGENET_STD,
        ...              (224, 224)) < 1e-5                                # doctest: +SKIP
        True
    """
    import onnxruntime as ort

    def session(m: Any) -> Any:
        raw = m.SerializeToString() if isinstance(m, onnx.ModelProto) else os.fspath(m)
        return ort.InferenceSession(raw, providers=["CPUExecutionProvider"])

    x = np.random.default_rng(seed).uniform(0, 1, (batch, 3, *input_size)).astype(np.float32)
    norm = (x - np.asarray(mean, np.float32).reshape(1, 3, 1, 1)) / np.asarray(
        std, np.float32).reshape(1, 3, 1, 1)
    base_sess, caffe_sess = session(base), session(caffe)
    logits = base_sess.run(None, {base_sess.get_inputs()[0].name: norm})[0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    got = caffe_sess.run(None, {caffe_sess.get_inputs()[0].name: caffe_input(x, mean_bgr)})[0]
    return float(np.max(np.abs(got - want)))


def _caffeify(base: onnx.ModelProto, mean: Sequence[float], std: Sequence[float], seed: int
              ) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    proto.CopyFrom(base)
    del proto.metadata_props[:]
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    x = data_input(proto)
    # 1. fold the BGR swap and 1 / (255 std) into every convolution that reads the input
    users = [n for n in graph.node if x.name in n.input]
    if not users or any(n.op_type != "Conv" or n.input[0] != x.name or n.input[1] not in inits
                        for n in users):
        raise ValueError("the base model's input must feed convolutions with constant weights")
    scale = (1.0 / (255.0 * np.asarray(std, np.float64)))[::-1]  # per BGR input channel
    for node in users:
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        folded = (weight[:, ::-1] * scale.reshape(1, 3, 1, 1)).astype(np.float32)
        name = unique_name(graph, node.input[1] + "_bgr255")
        graph.initializer.append(numpy_helper.from_array(folded, name))
        node.input[1] = name
    drop_unused_initializers(graph)
    # 2. ranks, for the no-op Transposes (4-D tensors only)
    inferred = onnx.shape_inference.infer_shapes(proto)
    rank = {v.name: len(v.type.tensor_type.shape.dim)
            for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    rng = np.random.default_rng(seed)
    nchw = "data_nchw"
    nodes = [helper.make_node("Transpose", ["data"], [nchw], name="data_transpose",
                              perm=[0, 3, 1, 2])]
    counter = 0
    for node in graph.node:
        node.input[:] = [nchw if i == x.name else i for i in node.input]
        nodes.append(node)
        out = node.output[0]
        if node.op_type not in _SPRINKLE or rank.get(out) != 4:
            continue
        raw = f"{out}__caffe"
        node.output[0] = raw
        steps = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
        cur = raw
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            counter += 1
            if step == "cast":
                nxt = out if last else f"{out}__cast{counter}"
                nodes.append(helper.make_node("Cast", [cur], [nxt], name=f"cast_{counter}",
                                              to=TensorProto.FLOAT))
            else:
                perm = list(_PERMS[int(rng.integers(len(_PERMS)))])
                inv = [int(i) for i in np.argsort(perm)]
                mid = f"{out}__t{counter}"
                nxt = out if last else f"{out}__tt{counter}"
                nodes.append(helper.make_node("Transpose", [cur], [mid],
                                              name=f"transpose_{counter}a", perm=perm))
                nodes.append(helper.make_node("Transpose", [mid], [nxt],
                                              name=f"transpose_{counter}b", perm=inv))
            cur = nxt
    # 3. final Softmax; NHWC input "data"
    logits = graph.output[0]
    nodes.append(helper.make_node("Softmax", [logits.name], ["prob"], name="prob", axis=1))
    dims = logits.type.tensor_type.shape.dim
    out_dims = [d.dim_param or d.dim_value for d in dims]
    in_dims = [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(
        "data", TensorProto.FLOAT, [in_dims[0], in_dims[2], in_dims[3], in_dims[1]]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("prob", TensorProto.FLOAT, out_dims))
    del graph.value_info[:]
    graph.name = "caffe_converted"
    proto.producer_name, proto.producer_version = "caffe-style (model_zoo.third_party)", "1"
    proto.doc_string = "Caffe->ONNX style conversion (NHWC BGR 0..255 minus mean)"
    onnx.checker.check_model(proto, full_check=True)
    return proto
