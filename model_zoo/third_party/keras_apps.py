"""Keras applications (MobileNetV2, ResNet50, VGG16) exported NHWC with a Softmax head
through ``converters.tf_to_onnx``, weights seeded random."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .truth import KERAS_CAFFE_MEAN_BGR, Truth, expected_onnx2torch, height_width, set_batch_dim

# --------------------------------------------------------------------------- Keras
_KERAS_ARCHS = ("MobileNetV2", "ResNet50", "VGG16")
_LIFT_ABOVE = 50_000_000  # parameters: above this, Dense kernels are lifted out for tf2onnx


def _keras_vgg16(input_shape: tuple[int, int, int], classes: int, width: int,
                 fc_units: int) -> Any:
    """keras.applications.VGG16's layers (names, ops, Softmax head) with scaled widths."""
    import keras
    from keras import layers

    img = keras.Input(input_shape, name="input_layer")
    x = img
    for block, (filters, convs) in enumerate(
            [(width, 2), (2 * width, 2), (4 * width, 3), (8 * width, 3), (8 * width, 3)], 1):
        for k in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, activation="relu", padding="same",
                              name=f"block{block}_conv{k}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc_units, activation="relu", name="fc1")(x)
    x = layers.Dense(fc_units, activation="relu", name="fc2")(x)
    x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(img, x, name="vgg16")


def _keras_resnet50(input_shape: tuple[int, int, int], classes: int, width: int,
                    blocks: Sequence[int]) -> Any:
    """Keras' own ResNet builder (ResNet50's v1 bottleneck stacks) with other widths/depths."""
    from keras.src.applications import resnet

    def stack_fn(x: Any) -> Any:
        for stage, n in enumerate(blocks):
            x = resnet.stack_residual_blocks_v1(x, width * 2 ** stage, n,
                                                stride1=1 if stage == 0 else 2,
                                                name=f"conv{stage + 2}")
        return x

    return resnet.ResNet(stack_fn, False, True, include_top=True, weights=None,
                         input_shape=input_shape, classes=classes,
                         classifier_activation="softmax", name="resnet50")


def randomise_keras(model: Any, seed: int) -> None:
    """Seeded BN statistics/affine parameters and biases (Keras starts them at 0 / 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.weights
        if not weights:
            continue
        values = []
        for w in weights:
            leaf, shape = w.path.rsplit("/", 1)[-1], tuple(w.shape)
            if leaf == "gamma":
                v = rng.uniform(0.5, 1.5, shape)
            elif leaf in ("beta", "bias"):
                v = rng.normal(0.0, 0.1, shape)
            elif leaf == "moving_mean":
                v = rng.normal(0.0, 0.1, shape)
            elif leaf == "moving_variance":
                v = rng.uniform(0.5, 2.0, shape)
            else:
                v = np.asarray(w.numpy())
            values.append(np.asarray(v, dtype=np.float32))
        layer.set_weights(values)


def keras_export(model: Any, shape: tuple[int | None, ...]) -> onnx.ModelProto:
    """NHWC export through converters.tf_to_onnx (Dense kernels lifted for huge models)."""
    from converters.tf_to_onnx import function_to_onnx, keras_to_onnx

    with tempfile.TemporaryDirectory(prefix="third_party-keras-") as tmp:
        path = Path(tmp) / "model.onnx"
        if model.count_params() <= _LIFT_ABOVE:
            proto = keras_to_onnx(model, shape, path, opset=17, inputs_as_nchw=False)
        else:
            proto = _keras_export_lifted(model, shape, path, function_to_onnx)
    set_batch_dim(proto.graph.input[0])
    set_batch_dim(proto.graph.output[0])
    _renumber_tf2onnx(proto.graph)
    proto.graph.doc_string = "converted by tf2onnx"  # was named after a counted tf.function
    return proto


_COUNTED = re.compile(r"^(.*)__(\d+)$")


def _renumber_tf2onnx(graph: onnx.GraphProto) -> None:
    """Make tf2onnx's output the same bytes on every build.

    tf2onnx suffixes the node and initializer names it makes with a process-wide counter
    (``BiasAdd__6``, then ``BiasAdd__106`` in a second export; converters.tf_to_onnx
    renumbers tensor names only), and which of several equal constants survives its
    de-duplication varies from run to run (``block_11_.../Relu6_min__12`` or
    ``block_16_.../Relu6_min__7``). So: counted initializers are named after their last path
    component and the order of first use (``Relu6_min__k3``), counted node names are
    renumbered in graph order, and initializers are listed in order of first use.
    """
    first: dict[str, tuple[int, int]] = {}
    for k, node in enumerate(graph.node):
        for j, name in enumerate(node.input):
            first.setdefault(name, (k, j))
    never = (len(graph.node), 0)
    inits = sorted(graph.initializer, key=lambda t: (first.get(t.name, never), t.name))
    renames: dict[str, str] = {}
    for t in inits:
        m = _COUNTED.match(t.name)
        if m:
            renames[t.name] = f"{m.group(1).rsplit('/', 1)[-1]}__k{len(renames)}"
    counted_nodes = 0
    for node in graph.node:
        m = _COUNTED.match(node.name)
        if m:
            node.name = f"{m.group(1)}__n{counted_nodes}"
            counted_nodes += 1
        node.input[:] = [renames.get(i, i) for i in node.input]
    for t in inits:
        t.name = renames.get(t.name, t.name)
    copies = [onnx.TensorProto() for _ in inits]
    for copy, t in zip(copies, inits, strict=True):
        copy.CopyFrom(t)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    for value in graph.input:
        value.name = renames.get(value.name, value.name)


def _keras_export_lifted(model: Any, shape: tuple[int | None, ...], path: Path,
                         function_to_onnx: Callable[..., onnx.ModelProto]) -> onnx.ModelProto:
    """Convert with the Dense kernels as extra function inputs, then make them initializers.

    tf2onnx freezes every variable into a constant and its graph passes copy them many
    times: a 138M-parameter VGG16 ran out of 23 GB (10 GB peak this way). The Dense kernels
    only feed MatMul nodes, so passing them in and turning those ONNX inputs into initializers
    (named ``fc1_kernel``...) gives the same ops as a direct conversion.
    """
    import keras
    import tensorflow as tf

    trainable = [v.numpy() for v in model.trainable_variables]
    frozen = [v.numpy() for v in model.non_trainable_variables]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    dense_paths = {layer.kernel.path for layer in dense}
    lifted = [k for k, v in enumerate(model.trainable_variables) if v.path in dense_paths]
    names = {k: model.trainable_variables[k].path.replace("/", "_") for k in lifted}

    def forward(x: Any, *kernels: Any) -> Any:
        given = dict(zip(lifted, kernels, strict=True))
        tv = [given.get(k, tf.constant(v)) for k, v in enumerate(trainable)]
        ntv = [tf.constant(v) for v in frozen]
        return model.stateless_call(tv, ntv, x, training=False)[0]

    sig = [tf.TensorSpec(tuple(shape), tf.float32, name="input")]
    sig += [tf.TensorSpec(trainable[k].shape, tf.float32, name=names[k]) for k in lifted]
    proto = function_to_onnx(forward, sig, path, opset=17)
    graph = proto.graph
    for k in lifted:
        graph.initializer.append(numpy_helper.from_array(trainable[k], names[k]))
    keep = [i for i in graph.input if i.name not in names.values()]
    del graph.input[:]
    graph.input.extend(keep)
    trainable.clear()
    onnx.checker.check_model(proto)
    return proto


def keras_application(arch: str, input_size: int | Sequence[int] = 224, num_classes: int = 1000,
                      seed: int = 0, *, alpha: float = 1.0, width: int = 64,
                      blocks: Sequence[int] = (3, 4, 6, 3), fc_units: int = 4096
                      ) -> tuple[onnx.ModelProto, Truth]:
    """A ``keras.applications`` model (random weights, Softmax head) as a Keras user exports it.

    ``arch``: ``"MobileNetV2"`` (``alpha``), ``"ResNet50"`` (``width`` = first stage's
    bottleneck filters, 64; ``blocks`` per stage, (3, 4, 6, 3)) or ``"VGG16"`` (``width`` =
    first block's filters, 64; ``fc_units``, 4096). The ONNX input is NHWC ``input``
    (N, H, W, 3) with a dynamic batch; the output ``output`` is Softmax probabilities.
    Calls ``keras.backend.clear_session()`` first: without it Keras' global state makes a
    second build in a process differ (other weights, other tf2onnx folding).

    Example:
        >>> proto, truth = keras_application("MobileNetV2", 32, 10, alpha=0.35)  # doctest: +SKIP
        >>> truth.mean, truth.std                                               # doctest: +SKIP
        ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))
    """
    if arch not in _KERAS_ARCHS:
        raise ValueError(f"arch must be one of {_KERAS_ARCHS}, got {arch!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    h, w = height_width(input_size)
    keras.backend.clear_session()  # else a second build in a process differs
    keras.utils.set_random_seed(seed)
    shape = (h, w, 3)
    notes = []
    if arch == "MobileNetV2":
        model = keras.applications.MobileNetV2(
            input_shape=shape, alpha=alpha, include_top=True, weights=None, classes=num_classes,
            classifier_activation="softmax")
        if alpha != 1.0:
            notes.append(f"alpha={alpha}")
    elif arch == "ResNet50":
        if width == 64 and tuple(blocks) == (3, 4, 6, 3):
            model = keras.applications.ResNet50(
                include_top=True, weights=None, input_shape=shape, classes=num_classes,
                classifier_activation="softmax")
        else:
            model = _keras_resnet50(shape, num_classes, width, blocks)
            notes.append(f"reduced ResNet50 (keras' ResNet builder): width={width}, "
                         f"blocks={tuple(blocks)}")
    else:
        if width == 64 and fc_units == 4096:
            model = keras.applications.VGG16(
                include_top=True, weights=None, input_shape=shape, classes=num_classes,
                classifier_activation="softmax")
        else:
            model = _keras_vgg16(shape, num_classes, width, fc_units)
            notes.append(f"reduced VGG16 (keras.applications' layers rebuilt): width={width}, "
                         f"fc_units={fc_units}")
    randomise_keras(model, seed)
    proto = keras_export(model, (None, h, w, 3))
    proto.doc_string = f"keras.applications {arch} (random weights, seed {seed})"
    onnx.checker.check_model(proto)
    if arch == "MobileNetV2":
        prep = dict(channel_order="RGB", scale=255.0, mean=(127.5,) * 3, std=(127.5,) * 3)
        notes.append('keras preprocess_input mode "tf": x / 127.5 - 1')
    else:
        prep = dict(channel_order="BGR", scale=255.0, mean=KERAS_CAFFE_MEAN_BGR,
                    std=(1.0, 1.0, 1.0))
        notes.append('keras preprocess_input mode "caffe": RGB->BGR, minus the BGR mean')
    notes.append("BN folded into the convolutions by TensorFlow (no BatchNormalization node)")
    truth = Truth("keras", "NHWC", input_size=(h, w), output="probabilities",
                  num_classes=num_classes, onnx2torch_ok=expected_onnx2torch("keras", arch),
                  notes="; ".join(notes), **prep)
    return proto, truth
