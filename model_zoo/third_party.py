"""Third-party-style ONNX victim models, built here deterministically, with their ground truth.

Real victim files do not come from our zoo: Keras exports take NHWC input and end in
Softmax, torchvision exports come from new and old exporters, Caffe conversions take BGR
pixels in 0..255 with the mean already subtracted and are full of no-op nodes. The builders
below make such files (random, seeded weights; nothing is downloaded) and return
``(onnx.ModelProto, Truth)``: ``Truth`` is what a user would have to know about the file, the
ground truth the project's model contract must infer or be told. None of these files carries
``model_zoo`` metadata.

Example:
    >>> from model_zoo import third_party as tp
    >>> proto, truth = tp.build("tv_squeezenet1_1_legacy", small=True)   # doctest: +SKIP
    >>> truth.output, truth.input_size                                    # doctest: +SKIP
    ('probabilities', (32, 32))
    >>> path = tp.save("keras_mobilenetv2", "/tmp/tp", small=True)       # doctest: +SKIP

Command: ``python -m model_zoo.third_party [--small] [--out DIR] [--parity] [NAME ...]``.

What a file's input means (``Truth``): the graph input, in ``layout``, holds
``(scale * pixel - mean) / std`` per channel, channels in ``channel_order``, with ``pixel`` in
[0, 1]; ``mean`` and ``std`` are listed in the model's own channel order and units.

Builders:

- ``keras_application``: ``keras.applications`` MobileNetV2 / ResNet50 / VGG16
  (``weights=None``, Softmax head) through ``converters.tf_to_onnx`` with NHWC input. BN
  statistics, BN gamma/beta and biases are drawn from a seeded generator (TensorFlow folds BN
  into the convolutions, so no BatchNormalization node survives). Smaller variants for tests:
  MobileNetV2 ``alpha``; ResNet50 ``width``/``blocks`` (Keras' own ResNet builder with its
  ``stack_residual_blocks_v1``); VGG16 ``width``/``fc_units`` (same layer names and ops as
  ``keras.applications.VGG16``, built layer by layer, since that function has no width knob).
  tf2onnx ran out of this machine's 23 GB converting the 138M-parameter VGG16 with its Dense
  kernels as constants, so models over 50M parameters are converted with their Dense kernels
  passed in as function inputs and turned back into initializers afterwards (same ops).
- ``torchvision_model``: ``torch.onnx.export(dynamo=False)``; modern = opset 17, dynamic batch,
  ``input``/``output`` names; ``legacy=True`` = opset 9, weights also listed as graph inputs
  (``keep_initializers_as_inputs``), torch's default tensor names (input ``input.1``; the
  output is numbered, or ``softmaxout_1`` after a spatial Softmax), an opset-7 Dropout (with
  its mask output) before the classifier, and optionally a 4-D head
  (``head="spatial_logits"``: (N, C, 1, 1) logits, SqueezeNet without its final Flatten,
  ResNet/DenseNet with the Linear as a 1x1 Conv; ``"spatial_softmax"``: then a Softmax over
  axis 1 of that 4-D tensor, as Caffe2-era SqueezeNet files end; the default for a legacy
  SqueezeNet). BatchNorm running statistics and affine parameters are seeded random.
- ``caffe_style``: a zoo model wrapped as a Caffe->ONNX conversion (NHWC, BGR, 0..255, mean
  subtracted by the user; channel swap and 1/(255 std) folded into the first convolution;
  no-op Casts and cancelling Transpose pairs after every 4-D node; a final Softmax).

Measured on the 2-core development machine (onnx2torch 1.5.15, onnxruntime 1.31, torch 2.14,
TF 2.21). build s = seconds for ``build(name, small=True)`` in a warm process (the first Keras
build of a process pays about 5 s more); full s = build seconds in ``python -m
model_zoo.third_party --parity`` (all 12 in 2 min 8 s, peak memory 10 GB, in the VGG16
build); onnx2torch = ``onnx2torch.convert`` succeeds; importer = ``converters.onnx_to_tf``
(eager) against onnxruntime on the file's own input layout, max|diff| / max|ref| on 2 SMALL
images (full size, 1 image: 1.3e-07 .. 7.8e-07 for every file).

======================== ============ ======= ======== ========== ======== ======= ========
name                     SMALL config build s MB       onnx2torch importer full s  full MB
======================== ============ ======= ======== ========== ======== ======= ========
keras_mobilenetv2        32px a=0.35  4.2     1.7      yes        1.7e-07  10.2    14.0
keras_resnet50           w=8 1-1-1-1  3.4     0.6      yes        1.2e-07  19.4    102.4
keras_vgg16              w=8 fc=64    2.6     1.0      yes        2.1e-07  34.1    553.4
tv_mobilenet_v3_small    32px w=0.5   1.3     1.7      yes        1.0e-06  1.7     10.3
tv_shufflenet_v2         x0_5 (x1_0)  1.8     1.6      yes        3.0e-07  0.7     9.3
tv_squeezenet1_1         32px         0.5     2.9      yes        8.4e-07  0.9     5.0
tv_densenet121           dense_small  0.6     0.1      yes        5.6e-07  6.7     32.4
tv_resnet50              resnet_small 0.8     14.2     yes        7.0e-07  3.5     102.5
tv_squeezenet1_1_legacy  32px         0.5     2.9      no (1)     2.2e-07  0.7     5.0
tv_resnet50_legacy       resnet_small 0.8     14.2     no (1)     9.1e-07  2.3     102.5
tv_densenet121_legacy    dense_small  0.8     0.1      no (1)     3.2e-07  6.4     32.5
caffe_resnet18           resnet20     0.1     1.1      yes        1.4e-06  1.0     46.9
======================== ============ ======= ======== ========== ======== ======= ========

(1) ``NotImplementedError: Converter is not implemented (OperationDescription(domain='',
operation_type='Dropout', version=7))``: onnx2torch registers Dropout converters for
versions 10, 12 and 13 only; the same files without that node convert. SMALL models have
10 classes and 32x32 inputs (resnet20_cifar: 32x32 CIFAR-10); full-size ones 1000 classes and
224x224 inputs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .registry import IMAGENET_MEAN, IMAGENET_STD, FileContract

# Bump when a builder's output changes: files saved by an older format are rebuilt.
FORMAT = 2  # 2: the zoo records the working normalisation of a mean-only model

ORIGINS = ("keras", "torchvision", "torchvision-legacy", "caffe-style")
OUTPUTS = ("logits", "probabilities", "spatial_logits")


@dataclass(frozen=True)
class Truth:
    """What a user must know to feed a file and read its output.

    The graph input, in ``layout``, is ``(scale * pixel - mean) / std`` per channel, the
    channels in ``channel_order`` and ``pixel`` in [0, 1]; ``mean``/``std`` are in the model's
    channel order and units. ``output``: ``"logits"``, ``"probabilities"`` (the graph ends in
    Softmax; see ``notes`` for a 4-D one) or ``"spatial_logits"`` ((N, C, 1, 1) logits).

    Example:
        >>> t = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (224, 224),
        ...           "probabilities", 1000, True)
        >>> Truth.from_dict(t.to_dict()) == t
        True
    """

    origin: str
    layout: str
    channel_order: str
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int]
    output: str
    num_classes: int
    onnx2torch_ok: bool
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Truth:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["mean"] = tuple(float(v) for v in d["mean"])
        d["std"] = tuple(float(v) for v in d["std"])
        d["input_size"] = tuple(int(v) for v in d["input_size"])
        return cls(**d)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The graph input's shape for ``batch`` images (in ``layout``)."""
        h, w = self.input_size
        return (batch, h, w, 3) if self.layout == "NHWC" else (batch, 3, h, w)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """The file's input for RGB pixels in [0, 1], NCHW (float32).

        Example:
            >>> t = Truth("caffe-style", "NHWC", "BGR", 255.0, (1.0, 2.0, 3.0), (1.0,) * 3,
            ...           (1, 1), "probabilities", 10, True)
            >>> t.model_input(np.ones((1, 3, 1, 1), np.float32)).ravel().tolist()
            [254.0, 253.0, 252.0]
        """
        return FileContract(self.layout, self.channel_order, self.scale, tuple(self.mean),
                            tuple(self.std), self.output).model_input(pixels)


def truth_contract(truth: Truth, logits: str | None = None) -> dict[str, Any]:
    """The model-contract fields (``converters.onnx_to_tf.contract``) a Truth stands for, as
    the JSON a file's ``tfmi.contract`` metadata entry holds: layout, channel_order, scale,
    mean, std, input_size, output, and ``logits`` (the tensor holding the class logits, e.g.
    a final Softmax's input) when given.

    Example:
        >>> t = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (224, 224),
        ...           "probabilities", 1000, True)
        >>> truth_contract(t, "logits:0")["scale"], truth_contract(t)["output"]
        (255.0, 'probabilities')
    """
    out: dict[str, Any] = {
        "layout": truth.layout, "channel_order": truth.channel_order,
        "scale": float(truth.scale), "mean": [float(v) for v in truth.mean],
        "std": [float(v) for v in truth.std], "input_size": [int(v) for v in truth.input_size],
        "output": truth.output,
    }
    if logits is not None:
        out["logits"] = logits
    return out


_TORCH_MEAN = tuple(float(v) for v in IMAGENET_MEAN)
_TORCH_STD = tuple(float(v) for v in IMAGENET_STD)
# keras.applications.imagenet_utils.preprocess_input: "caffe" mode (BGR, 0..255, mean in BGR)
KERAS_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# 255 * torchvision's ImageNet mean, in BGR order: what a Caffe-converted file's user subtracts
CAFFE_MEAN_BGR = tuple(round(255.0 * m, 6) for m in IMAGENET_MEAN[::-1])


# --------------------------------------------------------------------------- helpers
def _size(input_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(input_size, (int, np.integer)):
        return int(input_size), int(input_size)
    h, w = input_size
    return int(h), int(w)


def data_input(proto: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The graph input that is not an initializer (legacy files list weights as inputs too).

    Example:
        >>> data_input(proto).name          # doctest: +SKIP
        'input.1'
    """
    inits = {t.name for t in proto.graph.initializer}
    real = [i for i in proto.graph.input if i.name not in inits]
    if len(real) != 1:
        raise ValueError(f"expected one data input, found {[i.name for i in real]}")
    return real[0]


def param_count(proto: onnx.ModelProto) -> int:
    """Number of float initializer elements."""
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in proto.graph.initializer
                   if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                      TensorProto.FLOAT16)))


def _set_batch_dim(value: onnx.ValueInfoProto, name: str = "batch") -> None:
    dim = value.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = name


def _sync_initializer_inputs(graph: onnx.GraphProto, data_names: Sequence[str]) -> None:
    """Inputs: the data inputs, then every initializer (old-exporter style), nothing else."""
    data = [i for i in graph.input if i.name in data_names]
    kept = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
            for t in graph.initializer]
    del graph.input[:]
    graph.input.extend(data + kept)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _unique(graph: onnx.GraphProto, base: str) -> str:
    taken = ({t.name for t in graph.initializer} | {i.name for i in graph.input}
             | {o for n in graph.node for o in n.output} | {n.name for n in graph.node})
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


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


def _randomise_keras(model: Any, seed: int) -> None:
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


def _keras_export(model: Any, shape: tuple[int | None, ...]) -> onnx.ModelProto:
    """NHWC export through converters.tf_to_onnx (Dense kernels lifted for huge models)."""
    from converters.tf_to_onnx import function_to_onnx, keras_to_onnx

    with tempfile.TemporaryDirectory(prefix="third_party-keras-") as tmp:
        path = Path(tmp) / "model.onnx"
        if model.count_params() <= _LIFT_ABOVE:
            proto = keras_to_onnx(model, shape, path, opset=17, inputs_as_nchw=False)
        else:
            proto = _keras_export_lifted(model, shape, path, function_to_onnx)
    _set_batch_dim(proto.graph.input[0])
    _set_batch_dim(proto.graph.output[0])
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

    h, w = _size(input_size)
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
    _randomise_keras(model, seed)
    proto = _keras_export(model, (None, h, w, 3))
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
                  num_classes=num_classes, onnx2torch_ok=_expected_onnx2torch("keras", arch),
                  notes="; ".join(notes), **prep)
    return proto, truth


# --------------------------------------------------------------------------- torchvision
_TV_ARCHS = ("mobilenet_v3_small", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_1",
             "densenet121", "densenet_small", "resnet50", "resnet_small")
_HEADS = ("logits", "spatial_logits", "spatial_softmax")


def _torchvision_module(arch: str, num_classes: int, width_mult: float) -> Any:
    from .triton_guard import guard_triton

    guard_triton()
    import torchvision
    from torchvision.models import densenet, resnet

    if arch == "densenet_small":
        return densenet.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16,
                                 bn_size=2, num_classes=num_classes)
    if arch == "resnet_small":
        return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], num_classes=num_classes,
                             width_per_group=16)
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if arch == "mobilenet_v3_small" and width_mult != 1.0:
        kwargs["width_mult"] = width_mult
    return getattr(torchvision.models, arch)(**kwargs)


def _randomise_bn(model: Any, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def _torch_export(model: Any, h: int, w: int, *, opset: int, legacy: bool,
                  batch: int | None) -> onnx.ModelProto:
    import torch

    in_name = "input.1" if legacy else "input"  # torch's own default name
    kwargs: dict[str, Any] = {}
    if not legacy:
        kwargs["output_names"] = ["output"]
    if batch is None:
        kwargs["dynamic_axes"] = {in_name: {0: "batch"}}
        if not legacy:
            kwargs["dynamic_axes"]["output"] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (torch.zeros(batch or 1, 3, h, w),), buf, dynamo=False,
            opset_version=opset, training=torch.onnx.TrainingMode.PRESERVE,
            input_names=[in_name], keep_initializers_as_inputs=legacy, **kwargs)
    return onnx.load_from_string(buf.getvalue())


def _final_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The chain of nodes ending at the (single) graph output, last first."""
    producer = {o: n for n in graph.node for o in n.output}
    chain, name = [], graph.output[0].name
    while name in producer:
        node = producer[name]
        chain.append(node)
        name = node.input[0] if node.input else ""
    return chain


def _spatial_head(graph: onnx.GraphProto, arch: str) -> None:
    """Make the output (N, C, 1, 1): drop the final Flatten (SqueezeNet) or turn
    GlobalAveragePool -> Flatten -> Gemm into GlobalAveragePool -> 1x1 Conv."""
    chain = _final_nodes(graph)
    out = graph.output[0]
    inits = {t.name: t for t in graph.initializer}
    if chain[0].op_type in ("Flatten", "Reshape") and chain[1].op_type in (
            "GlobalAveragePool", "AveragePool"):
        flatten, pooled = chain[0], chain[1].output[0]
        graph.node.remove(flatten)
        new_out = pooled
    elif (chain[0].op_type == "Gemm" and chain[1].op_type == "Flatten"
          and chain[2].op_type in ("GlobalAveragePool", "AveragePool")):
        gemm, flatten = chain[0], chain[1]
        attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
        if attrs.get("transB", 0) != 1 or attrs.get("alpha", 1.0) != 1.0 or attrs.get(
                "beta", 1.0) != 1.0 or gemm.input[1] not in inits:
            raise ValueError(f"{arch}: unexpected classifier Gemm {attrs}")
        weight = numpy_helper.to_array(inits[gemm.input[1]])
        k, c = weight.shape
        conv_w = numpy_helper.from_array(weight.reshape(k, c, 1, 1).copy(),
                                         _unique(graph, gemm.input[1] + "_1x1"))
        graph.initializer.append(conv_w)
        conv = helper.make_node(
            "Conv", [chain[2].output[0], conv_w.name] + list(gemm.input[2:3]),
            [gemm.output[0]], name=_unique(graph, "classifier_conv"), kernel_shape=[1, 1])
        index = list(graph.node).index(flatten)
        graph.node.remove(flatten)
        graph.node.remove(gemm)
        graph.node.insert(index, conv)
        new_out = gemm.output[0]
    else:
        raise ValueError(f"{arch}: no Flatten/Gemm head to make spatial "
                         f"(ends {[n.op_type for n in chain[:3]]})")
    dims = [d for d in out.type.tensor_type.shape.dim]
    first = dims[0].dim_param or dims[0].dim_value
    classes = dims[1].dim_value
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(new_out, TensorProto.FLOAT,
                                                      [first, classes, 1, 1]))


def _append_softmax(graph: onnx.GraphProto, name: str, axis: int = 1) -> None:
    out = graph.output[0]
    name = _unique(graph, name)
    graph.node.append(helper.make_node("Softmax", [out.name], [name],
                                       name=_unique(graph, "Softmax"), axis=axis))
    new = onnx.ValueInfoProto()
    new.CopyFrom(out)
    new.name = name
    del graph.output[:]
    graph.output.append(new)


def _insert_dropout(graph: onnx.GraphProto, ratio: float = 0.5) -> None:
    """An opset-7 Dropout (identity at inference, with its mask output) before the
    classifier: the data input of the last Conv/Gemm/MatMul."""
    nodes = list(graph.node)
    k = max(i for i, n in enumerate(nodes) if n.op_type in ("Conv", "Gemm", "MatMul"))
    cls = nodes[k]
    src = cls.input[0]
    out = _unique(graph, src + "_dropout")
    mask = _unique(graph, src + "_dropout_mask")
    drop = helper.make_node("Dropout", [src], [out, mask], name=_unique(graph, "Dropout"),
                            ratio=ratio)
    cls.input[0] = out
    graph.node.insert(k, drop)


def torchvision_model(arch: str, input_size: int | Sequence[int] = 224, num_classes: int = 1000,
                      seed: int = 0, legacy: bool = False, *, head: str | None = None,
                      opset: int | None = None, width_mult: float = 1.0,
                      batch: int | None = None) -> tuple[onnx.ModelProto, Truth]:
    """A torchvision classifier (random weights, seeded random BN) exported to ONNX.

    Modern (``legacy=False``): opset 17, BN nodes kept, input ``input`` (N, 3, H, W) with a
    dynamic batch, logits ``output``. ``legacy=True``: opset ``opset`` (9), weights listed as
    graph inputs, an opset-7 Dropout before the classifier, default tensor names (input
    ``input.1``), and ``head``: ``"logits"`` (2-D; default except SqueezeNet), ``"spatial_logits"``
    ((N, C, 1, 1); SqueezeNet: its final Flatten removed; ResNet/DenseNet: the Linear becomes
    a 1x1 Conv) or ``"spatial_softmax"`` (spatial logits then Softmax over axis 1, the default
    for SqueezeNet). ``batch``: a fixed batch size instead of a dynamic one.
    ``width_mult``: MobileNetV3 only.

    Example:
        >>> proto, truth = torchvision_model("squeezenet1_1", 64, 10, legacy=True)  # doctest: +SKIP
        >>> truth.output, truth.origin                                             # doctest: +SKIP
        ('probabilities', 'torchvision-legacy')
    """
    if arch not in _TV_ARCHS:
        raise ValueError(f"arch must be one of {_TV_ARCHS}, got {arch!r}")
    if head is None:
        head = "spatial_softmax" if (legacy and arch == "squeezenet1_1") else "logits"
    if head not in _HEADS:
        raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
    if head != "logits" and not legacy:
        raise ValueError("head='spatial_*' is an old-exporter layout: use legacy=True")
    opset = (9 if legacy else 17) if opset is None else int(opset)
    if legacy and not 7 <= opset <= 9:
        raise ValueError(f"legacy opset must be 7..9, got {opset}")
    from .triton_guard import guard_triton

    guard_triton()
    import torch

    from .export import materialize_shared_initializers

    h, w = _size(input_size)
    torch.manual_seed(seed)
    model = _torchvision_module(arch, num_classes, width_mult)
    _randomise_bn(model, seed)
    proto = _torch_export(model, h, w, opset=opset, legacy=legacy, batch=batch)
    materialize_shared_initializers(proto)
    graph = proto.graph
    notes = ["torchvision ImageNet normalisation"]
    if legacy:
        data_names = [data_input(proto).name]
        if head != "logits":
            _spatial_head(graph, arch)
        _insert_dropout(graph)
        if head == "spatial_softmax":
            _append_softmax(graph, "softmaxout_1", axis=1)  # Caffe2 SqueezeNet's name
        _drop_unused_initializers(graph)
        _sync_initializer_inputs(graph, data_names)
        if batch is None:
            _set_batch_dim(graph.output[0])
        notes.append(f"old-exporter style: opset {opset}, weights listed as graph inputs, "
                     "opset-7 Dropout before the classifier, torch's default tensor names (input "
                     "'input.1')")
        if head == "spatial_softmax":
            notes.append(f"output is 4-D (N, {num_classes}, 1, 1): Softmax over axis 1 of the "
                         "spatial logits (Caffe2-era SqueezeNet style); probabilities")
        elif head == "spatial_logits":
            notes.append(f"output is 4-D (N, {num_classes}, 1, 1) logits")
    if arch == "squeezenet1_1":
        notes.append("SqueezeNet's logits come out of a ReLU (never negative)")
    if arch in ("densenet_small", "resnet_small"):
        notes.append({"densenet_small": "torchvision DenseNet(growth_rate=8, "
                      "block_config=(2, 2, 2, 2), num_init_features=16, bn_size=2)",
                      "resnet_small": "torchvision ResNet(Bottleneck, [1, 1, 1, 1], "
                      "width_per_group=16)"}[arch])
    if batch is not None:
        notes.append(f"fixed batch {batch}")
    origin = "torchvision-legacy" if legacy else "torchvision"
    if _onnx2torch_failure(origin, arch):
        notes.append(_onnx2torch_failure(origin, arch))
    proto.doc_string = f"torchvision {arch} (random weights, seed {seed})"
    onnx.checker.check_model(proto, full_check=True)
    output = {"logits": "logits", "spatial_logits": "spatial_logits",
              "spatial_softmax": "probabilities"}[head]
    truth = Truth(origin, "NCHW", "RGB", 1.0, _TORCH_MEAN, _TORCH_STD, (h, w), output,
                  num_classes, _expected_onnx2torch(origin, arch), "; ".join(notes))
    return proto, truth


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
    from . import load
    from .registry import get_spec

    spec = get_spec(base)
    if spec.num_classes is None:
        raise ValueError(f"{base} is not a classifier")
    shape = spec.input_shape
    if input_size is not None:
        h, w = _size(input_size)
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
                  _expected_onnx2torch("caffe-style", base),
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
        name = _unique(graph, node.input[1] + "_bgr255")
        graph.initializer.append(numpy_helper.from_array(folded, name))
        node.input[1] = name
    _drop_unused_initializers(graph)
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


# --------------------------------------------------------------------------- onnx2torch
# Measured with onnx2torch 1.5.15 (see the docstring table); checked by the tests.
# onnx2torch matches converters by exact op version and has none for Dropout-7 (its Dropout
# converters start at opset 10); the legacy files convert once that node is bypassed.
_ONNX2TORCH_FAILS: dict[tuple[str, str], str] = {
    ("torchvision-legacy", "*"): "onnx2torch 1.5.15 fails: NotImplementedError: Converter is "
    "not implemented (OperationDescription(domain='', operation_type='Dropout', version=7)); "
    "at opset 9 everything else in the file converts",
}


def _onnx2torch_failure(origin: str, arch: str) -> str | None:
    return _ONNX2TORCH_FAILS.get((origin, arch), _ONNX2TORCH_FAILS.get((origin, "*")))


def _expected_onnx2torch(origin: str, arch: str) -> bool:
    return _onnx2torch_failure(origin, arch) is None


# --------------------------------------------------------------------------- twins
def keras_torch_twins(input_size: int | Sequence[int] = 32, num_classes: int = 10, seed: int = 0
                      ) -> tuple[tuple[onnx.ModelProto, Truth], tuple[onnx.ModelProto, Truth]]:
    """One small CNN twice, with the same weights: as Keras exports it and as PyTorch does.

    Conv3x3(16, same)-BN-ReLU-MaxPool2-Conv3x3(32, same)-ReLU-GAP-Dense, built in Keras (NHWC
    input, Softmax head, BN folded by TensorFlow, Keras "tf" preprocessing: 0..255 pixels
    over 127.5 minus 1) and in PyTorch with the Keras weights copied (kernels HWIO -> OIHW,
    Dense (in, out) -> Linear (out, in); NCHW input in [0, 1] normalised by mean 0.5, std 0.5;
    logits out). Both files compute the same function of the pixels, to float rounding: what
    a technique returns through each file's contract must agree.

    Example:
        >>> (k, kt), (t, tt) = keras_torch_twins()                          # doctest: +SKIP
        >>> kt.layout, tt.layout, kt.output, tt.output                       # doctest: +SKIP
        ('NHWC', 'NCHW', 'probabilities', 'logits')
    """
    import os as _os

    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    from .triton_guard import guard_triton

    h, w = _size(input_size)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    km = keras.Sequential([
        keras.Input((h, w, 3)),
        layers.Conv2D(16, 3, padding="same", name="conv1"),
        layers.BatchNormalization(epsilon=1e-3, name="bn1"),
        layers.ReLU(name="relu1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(32, 3, padding="same", name="conv2"),
        layers.ReLU(name="relu2"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(num_classes, activation="softmax", name="fc"),
    ], name="twin")
    _randomise_keras(km, seed)
    keras_proto = _keras_export(km, (None, h, w, 3))
    keras_truth = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (h, w),
                        "probabilities", num_classes, True, "twin of the PyTorch file")

    guard_triton()
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16, eps=1e-3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
    get = {layer.name: layer.get_weights() for layer in km.layers}
    with torch.no_grad():
        for idx, name in ((0, "conv1"), (4, "conv2")):
            kernel, bias = get[name]
            net[idx].weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            net[idx].bias.copy_(torch.from_numpy(bias))
        gamma, beta, mean, var = get["bn1"]
        for t, v in ((net[1].weight, gamma), (net[1].bias, beta), (net[1].running_mean, mean),
                     (net[1].running_var, var)):
            t.copy_(torch.from_numpy(v))
        kernel, bias = get["fc"]
        net[8].weight.copy_(torch.from_numpy(kernel.T.copy()))
        net[8].bias.copy_(torch.from_numpy(bias))
    torch_proto = _torch_export(net, h, w, opset=17, legacy=False, batch=None)
    torch_truth = Truth("torchvision", "NCHW", "RGB", 1.0, (0.5,) * 3, (0.5,) * 3, (h, w),
                        "logits", num_classes, True, "twin of the Keras file")
    return (keras_proto, keras_truth), (torch_proto, torch_truth)


# --------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Config:
    """One named build: the builder's short name and its keyword arguments."""

    builder: str
    kwargs: dict[str, Any]


BUILDERS: dict[str, Callable[..., tuple[onnx.ModelProto, Truth]]] = {
    "keras": keras_application,
    "torchvision": torchvision_model,
    "caffe": caffe_style,
}

CATALOGUE: dict[str, Config] = {
    "keras_mobilenetv2": Config("keras", {"arch": "MobileNetV2"}),
    "keras_resnet50": Config("keras", {"arch": "ResNet50"}),
    "keras_vgg16": Config("keras", {"arch": "VGG16"}),
    "tv_mobilenet_v3_small": Config("torchvision", {"arch": "mobilenet_v3_small"}),
    "tv_shufflenet_v2": Config("torchvision", {"arch": "shufflenet_v2_x1_0"}),
    "tv_squeezenet1_1": Config("torchvision", {"arch": "squeezenet1_1"}),
    "tv_densenet121": Config("torchvision", {"arch": "densenet121"}),
    "tv_resnet50": Config("torchvision", {"arch": "resnet50"}),
    "tv_squeezenet1_1_legacy": Config("torchvision", {"arch": "squeezenet1_1", "legacy": True}),
    "tv_resnet50_legacy": Config("torchvision", {"arch": "resnet50", "legacy": True}),
    "tv_densenet121_legacy": Config("torchvision", {"arch": "densenet121", "legacy": True,
                                                    "head": "spatial_logits"}),
    "caffe_resnet18": Config("caffe", {"base": "resnet18"}),
}

_TINY = {"input_size": 32, "num_classes": 10}
SMALL: dict[str, Config] = {
    "keras_mobilenetv2": Config("keras", {"arch": "MobileNetV2", **_TINY, "alpha": 0.35}),
    "keras_resnet50": Config("keras", {"arch": "ResNet50", **_TINY, "width": 8,
                                       "blocks": (1, 1, 1, 1)}),
    "keras_vgg16": Config("keras", {"arch": "VGG16", **_TINY, "width": 8, "fc_units": 64}),
    "tv_mobilenet_v3_small": Config("torchvision", {"arch": "mobilenet_v3_small", **_TINY,
                                                    "width_mult": 0.5}),
    "tv_shufflenet_v2": Config("torchvision", {"arch": "shufflenet_v2_x0_5", **_TINY}),
    "tv_squeezenet1_1": Config("torchvision", {"arch": "squeezenet1_1", **_TINY}),
    "tv_densenet121": Config("torchvision", {"arch": "densenet_small", **_TINY}),
    "tv_resnet50": Config("torchvision", {"arch": "resnet_small", **_TINY}),
    "tv_squeezenet1_1_legacy": Config("torchvision", {"arch": "squeezenet1_1", **_TINY,
                                                      "legacy": True}),
    "tv_resnet50_legacy": Config("torchvision", {"arch": "resnet_small", **_TINY,
                                                 "legacy": True}),
    "tv_densenet121_legacy": Config("torchvision", {"arch": "densenet_small", **_TINY,
                                                    "legacy": True, "head": "spatial_logits"}),
    "caffe_resnet18": Config("caffe", {"base": "resnet20_cifar"}),
}


def config(name: str, small: bool = False) -> Config:
    """The named configuration (``CATALOGUE`` or, with ``small``, ``SMALL``)."""
    table = SMALL if small else CATALOGUE
    if name not in table:
        raise KeyError(f"unknown third-party model {name!r}: expected one of {', '.join(table)}")
    return table[name]


def build(name: str, small: bool = False, **overrides: Any) -> tuple[onnx.ModelProto, Truth]:
    """Build a named configuration (``overrides`` replace its keyword arguments), or call a
    builder by its short name (``"keras"``, ``"torchvision"``, ``"caffe"``) with ``overrides``.

    Example:
        >>> proto, truth = build("caffe_resnet18", small=True)              # doctest: +SKIP
        >>> proto, truth = build("torchvision", arch="densenet_small", input_size=32,
        ...                      num_classes=10)                             # doctest: +SKIP
    """
    if name in BUILDERS:
        return BUILDERS[name](**overrides)
    cfg = config(name, small)
    return BUILDERS[cfg.builder](**{**cfg.kwargs, **overrides})


def _params_record(name: str, small: bool) -> dict[str, Any]:
    cfg = config(name, small)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.kwargs.items()}
    return {"format": FORMAT, "name": name, "small": small, "builder": cfg.builder,
            "kwargs": kwargs}


def truth_path(onnx_path: str | os.PathLike[str]) -> Path:
    """Where :func:`save` records a file's Truth: ``<name>.truth.json`` beside it."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".truth.json")


def load_truth(onnx_path: str | os.PathLike[str]) -> Truth:
    """The Truth recorded beside a file written by :func:`save`."""
    with open(truth_path(onnx_path), encoding="utf-8") as fh:
        return Truth.from_dict(json.load(fh)["truth"])


def save(name: str, folder: str | os.PathLike[str], small: bool = False) -> Path:
    """Write ``<folder>/<name>.onnx`` (and ``<name>.truth.json``); returns the ONNX path.

    The JSON holds the Truth, the build parameters, the build time and the file's sha256:
    when both match, the file is not built again.

    Example:
        >>> save("tv_squeezenet1_1", "/tmp/tp", small=True).name         # doctest: +SKIP
        'tv_squeezenet1_1.onnx'
    """
    from .cache import atomic_write, sha256_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, record_path = folder / f"{name}.onnx", truth_path(folder / f"{name}.onnx")
    params = _params_record(name, small)
    if path.is_file() and record_path.is_file():
        try:
            with open(record_path, encoding="utf-8") as fh:
                record = json.load(fh)
            if record.get("params") == params and record.get("sha256") == sha256_file(path):
                return path
        except (OSError, ValueError):
            pass
    start = time.perf_counter()
    proto, truth = build(name, small)
    seconds = time.perf_counter() - start
    data = proto.SerializeToString()
    atomic_write(path, lambda fh: fh.write(data))
    record = {"params": params, "truth": truth.to_dict(), "sha256": sha256_file(path),
              "build_seconds": round(seconds, 2), "bytes": len(data),
              "params_count": param_count(proto)}
    text = json.dumps(record, indent=1, sort_keys=True).encode()
    atomic_write(record_path, lambda fh: fh.write(text))
    return path


# --------------------------------------------------------------------------- checks
def check(path: str | os.PathLike[str], truth: Truth, *, batch: int = 2, seed: int = 0,
          importer: bool = False) -> dict[str, Any]:
    """Run a file: onnxruntime, onnx2torch.convert and optionally our importer.

    Returns ``ort_ok``, ``output_shape``, ``onnx2torch_ok`` (with ``onnx2torch_error``) and,
    with ``importer``, ``importer_rel`` = max|tf - ort| / max|ort| (or ``importer_error``).
    """
    import onnxruntime as ort

    proto = onnx.load(os.fspath(path))
    data = data_input(proto)
    fixed = data.type.tensor_type.shape.dim[0].dim_value
    n = fixed or batch
    pixels = np.random.default_rng(seed).uniform(0, 1, (n, 3, *truth.input_size))
    x = truth.model_input(pixels.astype(np.float32))
    result: dict[str, Any] = {}
    options = ort.SessionOptions()
    options.log_severity_level = 3  # legacy files: one warning per initializer listed as input
    sess = ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    ref = sess.run(None, {data.name: x})[0]
    result.update(ort_ok=True, output_shape=tuple(ref.shape))
    try:
        from .triton_guard import guard_triton

        guard_triton()
        from onnx2torch import convert

        convert(proto)
        result["onnx2torch_ok"] = True
    except Exception as err:  # noqa: BLE001 - any failure is the measurement
        result["onnx2torch_ok"] = False
        result["onnx2torch_error"] = f"{type(err).__name__}: {err}"
    if importer:
        try:
            from converters import onnx_to_tf

            model = onnx_to_tf.load(proto)
            got = np.asarray(model(x, compiled=False))  # eager: no minutes of tracing
            result["importer_rel"] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        except Exception as err:  # noqa: BLE001
            result["importer_error"] = f"{type(err).__name__}: {err}"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_zoo.third_party",
        description="Build third-party-style ONNX files (Keras, torchvision, Caffe-style) and "
                    "print what they are.")
    parser.add_argument("names", nargs="*", help="configurations (default: all)")
    parser.add_argument("--small", action="store_true", help="tiny test variants (SMALL)")
    parser.add_argument("--out", default="runs/third_party", help="output folder")
    parser.add_argument("--parity", action="store_true",
                        help="also run our importer against onnxruntime")
    args = parser.parse_args(argv)
    from .triton_guard import guard_triton

    guard_triton()
    table = SMALL if args.small else CATALOGUE
    names = args.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown names {unknown}; expected some of {', '.join(table)}")
    cols = ("name", "origin", "input", "output", "params", "MB", "onnx2torch", "ort", "seconds")
    if args.parity:
        cols += ("importer",)
    print(" | ".join(cols), flush=True)
    for name in names:
        start = time.perf_counter()
        path = save(name, args.out, small=args.small)
        seconds = time.perf_counter() - start
        with open(truth_path(path), encoding="utf-8") as fh:
            record = json.load(fh)
        truth = Truth.from_dict(record["truth"])
        proto = onnx.load(os.fspath(path), load_external_data=False)
        dims = [d.dim_param or d.dim_value for d in data_input(proto).type.tensor_type.shape.dim]
        res = check(path, truth, batch=1, importer=args.parity)
        o2t = "yes" if res["onnx2torch_ok"] else "no"
        if res["onnx2torch_ok"] != truth.onnx2torch_ok:
            o2t += " (Truth says otherwise!)"
        row = [name, truth.origin, str(tuple(dims)), str(res["output_shape"]),
               f"{record['params_count']:,}", f"{path.stat().st_size / 1e6:.1f}", o2t,
               "yes" if res["ort_ok"] else "no",
               f"{seconds:.1f} (build {record['build_seconds']})"]
        if args.parity:
            row.append(f"{res['importer_rel']:.1e}" if "importer_rel" in res
                       else res.get("importer_error", "")[:120])
        print(" | ".join(row), flush=True)
        if "onnx2torch_error" in res:
            print(f"    onnx2torch: {res['onnx2torch_error'][:300]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
