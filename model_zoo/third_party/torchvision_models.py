"""torchvision architectures exported by the modern and the legacy ``torch.onnx``
exporter, with optional 4-D heads, weights seeded random."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import onnx
from onnx import TensorProto, helper, numpy_helper

from .truth import (
    TORCH_MEAN,
    TORCH_STD,
    Truth,
    data_input,
    drop_unused_initializers,
    expected_onnx2torch,
    height_width,
    onnx2torch_failure,
    set_batch_dim,
    sync_initializer_inputs,
    unique_name,
)

# --------------------------------------------------------------------------- torchvision
_TV_ARCHS = ("mobilenet_v3_small", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_1",
             "densenet121", "densenet_small", "resnet50", "resnet_small")
_HEADS = ("logits", "spatial_logits", "spatial_softmax")


def _torchvision_module(arch: str, num_classes: int, width_mult: float) -> Any:
    from ..triton_guard import guard_triton

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


def torch_export(model: Any, h: int, w: int, *, opset: int, legacy: bool,
                  batch: int | None) -> onnx.ModelProto:
    """``torch.onnx.export`` (TorchScript exporter) of ``model`` at h x w, modern or legacy."""
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
                                         unique_name(graph, gemm.input[1] + "_1x1"))
        graph.initializer.append(conv_w)
        conv = helper.make_node(
            "Conv", [chain[2].output[0], conv_w.name] + list(gemm.input[2:3]),
            [gemm.output[0]], name=unique_name(graph, "classifier_conv"), kernel_shape=[1, 1])
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
    name = unique_name(graph, name)
    graph.node.append(helper.make_node("Softmax", [out.name], [name],
                                       name=unique_name(graph, "Softmax"), axis=axis))
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
    out = unique_name(graph, src + "_dropout")
    mask = unique_name(graph, src + "_dropout_mask")
    drop = helper.make_node("Dropout", [src], [out, mask], name=unique_name(graph, "Dropout"),
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
    from ..triton_guard import guard_triton

    guard_triton()
    import torch

    from ..export import materialize_shared_initializers

    h, w = height_width(input_size)
    torch.manual_seed(seed)
    model = _torchvision_module(arch, num_classes, width_mult)
    _randomise_bn(model, seed)
    proto = torch_export(model, h, w, opset=opset, legacy=legacy, batch=batch)
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
        drop_unused_initializers(graph)
        sync_initializer_inputs(graph, data_names)
        if batch is None:
            set_batch_dim(graph.output[0])
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
    if onnx2torch_failure(origin, arch):
        notes.append(onnx2torch_failure(origin, arch))
    proto.doc_string = f"torchvision {arch} (random weights, seed {seed})"
    onnx.checker.check_model(proto, full_check=True)
    output = {"logits": "logits", "spatial_logits": "spatial_logits",
              "spatial_softmax": "probabilities"}[head]
    truth = Truth(origin, "NCHW", "RGB", 1.0, TORCH_MEAN, TORCH_STD, (h, w), output,
                  num_classes, expected_onnx2torch(origin, arch), "; ".join(notes))
    return proto, truth
