"""Layer aliases: friendly names -> ONNX tensor names, found by walking the graph's node names.

torch names every node after the module scope it ran in, e.g. ``/layer1/layer1.0/conv1/Conv``
or ``/features/features.4/MaxPool``. The output of module path ``P`` is the output of the last
node (in graph order) inside ``P``'s scope. Friendly aliases (``conv1_1``, ``res2``,
``logits``) are then defined on top of module paths.

Example:
    >>> from onnx import helper, TensorProto
    >>> nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/layer1/layer1.0/conv1/Conv"),
    ...          helper.make_node("Relu", ["c"], ["r"], name="/layer1/layer1.0/Relu")]
    >>> g = helper.make_graph(nodes, "g", [], [])
    >>> module_outputs(g)["layer1.0.conv1"], module_outputs(g)["layer1"]
    ('c', 'r')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import onnx

from .errors import ModelZooError


def scope_path(node_name: str) -> list[str]:
    """Module paths of a torch-named node, outermost first.

    Example:
        >>> scope_path("/layer2/layer2.0/downsample/downsample.0/Conv")
        ['layer2', 'layer2.0', 'layer2.0.downsample', 'layer2.0.downsample.0']
    """
    parts = node_name.split("/")
    if len(parts) < 3 or parts[0] != "":
        return []
    paths: list[str] = []
    prev = ""
    for comp in parts[1:-1]:
        if not comp:
            return paths
        if prev and comp.startswith(prev + "."):
            path = paths[-1] + comp[len(prev):]  # "layer1" then "layer1.0" -> "layer1.0"
        else:
            path = f"{paths[-1]}.{comp}" if paths else comp
        paths.append(path)
        prev = comp
    return paths


def module_outputs(graph: onnx.GraphProto) -> dict[str, str]:
    """Map every module path seen in the node names to its output tensor."""
    out: dict[str, str] = {}
    for node in graph.node:
        if not node.output:
            continue
        for path in scope_path(node.name):
            out[path] = node.output[0]
    return out


def graph_tensor_names(graph: onnx.GraphProto) -> set[str]:
    """All tensor names a graph defines: inputs, initializers and node outputs."""
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    names.update(o for n in graph.node for o in n.output if o)
    return names


def _block_names(kinds: Sequence[str], style: str) -> dict[int, str]:
    """Friendly names for the layers of a ``features`` stack.

    ``style="vgg"``: conv{block}_{k}, bn{block}_{k}, relu{block}_{k}, pool{block};
    ``style="alexnet"``: conv{n}, relu{n}, pool{n} (n = number of convs so far).

    Example:
        >>> _block_names(["conv", "relu", "pool", "conv"], "vgg")
        {0: 'conv1_1', 1: 'relu1_1', 2: 'pool1', 3: 'conv2_1'}
    """
    names: dict[int, str] = {}
    block, k, n = 1, 0, 0
    for idx, kind in enumerate(kinds):
        if kind == "conv":
            k, n = k + 1, n + 1
        if kind == "pool":
            names[idx] = f"pool{block}" if style == "vgg" else f"pool{n}"
            block, k = block + 1, 0
        elif kind in ("conv", "bn", "relu"):
            names[idx] = f"{kind}{block}_{k}" if style == "vgg" else f"{kind}{n}"
    return names


def _kind(module: Any) -> str:
    return {"Conv2d": "conv", "BatchNorm2d": "bn", "ReLU": "relu", "MaxPool2d": "pool",
            "Linear": "fc"}.get(type(module).__name__, "other")


def torch_friendly(name: str, model: Any) -> dict[str, str]:
    """Friendly alias -> module path, for a torch model of the zoo."""
    friendly: dict[str, str] = {}
    features = getattr(model, "features", None)
    if features is not None:
        style = "alexnet" if name.startswith("alexnet") else "vgg"
        kinds = [_kind(m) for m in features]
        for idx, alias in _block_names(kinds, style).items():
            friendly[alias] = f"features.{idx}"
    classifier = getattr(model, "classifier", None)
    if classifier is not None:
        fc = 5
        for idx, layer in enumerate(classifier):
            if _kind(layer) == "fc":
                fc += 1
                friendly[f"fc{fc}"] = f"classifier.{idx}"
            elif _kind(layer) == "relu":
                friendly[f"relu{fc}"] = f"classifier.{idx}"
    for i in range(1, 5):
        if hasattr(model, f"layer{i}"):
            friendly[f"res{i + 1}"] = f"layer{i}"
    if hasattr(model, "linear"):
        friendly["fc"] = "linear"
    return friendly


def build_aliases(graph: onnx.GraphProto, friendly: dict[str, str], *,
                  with_logits: bool, logits: str | None = None) -> dict[str, str]:
    """Module paths + friendly aliases (+ ``logits``) -> tensor names, all checked to exist.

    Every friendly alias must resolve (its module must have nodes in the graph). ``logits``
    is the graph's output unless ``logits`` names another tensor (a final Softmax's input).

    Example:
        >>> from onnx import helper
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="/act1/Relu")],
        ...                       "g", [], [])
        >>> build_aliases(g, {"a": "act1"}, with_logits=False)
        {'act1': 'y', 'a': 'y'}
    """
    modules = module_outputs(graph)
    aliases = dict(modules)
    missing = [alias for alias, path in friendly.items() if path not in modules]
    aliases.update({alias: modules[path] for alias, path in friendly.items() if path in modules})
    if with_logits:
        aliases["logits"] = logits or graph.output[0].name
    if missing:
        raise ModelZooError(f"the exported graph has no tensor for the aliases {missing}; "
                            "this is a model_zoo bug, please report it")
    return check_aliases(graph, aliases)


def keras_aliases(graph: onnx.GraphProto, layer_names: Sequence[str],
                  logits: str | None = None) -> dict[str, str]:
    """Keras layer name -> output of the last tf2onnx node of that layer (if it survived).

    tf2onnx keeps TensorFlow op names such as ``keras_cnn_1/relu1_1/Relu``; a layer ``L``
    owns the nodes whose second path component is ``L`` or ``L_<k>``. Layers optimised away
    entirely (a conv folded into the following BatchNorm) get no alias of their own.
    ``logits`` is the graph's output unless ``logits`` names another tensor (the input of a
    final Softmax: a Dense layer with ``activation="softmax"`` outputs probabilities).

    Example:
        >>> from onnx import helper
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="m/r_1/Relu")],
        ...                       "g", [], [helper.make_tensor_value_info("y", 1, [1])])
        >>> keras_aliases(g, ["r"])
        {'r': 'y', 'logits': 'y'}
    """
    aliases: dict[str, str] = {}
    wanted = set(layer_names)
    for node in graph.node:
        parts = node.name.split("/")
        if len(parts) < 2 or not node.output:
            continue
        layer = re.sub(r"_\d+$", "", parts[1])
        if parts[1] in wanted:
            layer = parts[1]
        if layer in wanted:
            aliases[layer] = node.output[0]
    aliases["logits"] = logits or graph.output[0].name
    return check_aliases(graph, aliases)


# -- third-party-style files (model_zoo.third_party) ------------------------------------------
def third_party_torch_friendly(arch: str) -> dict[str, str]:
    """Friendly alias -> module path for the torchvision architectures the zoo takes from
    ``model_zoo.third_party`` (their names follow the papers' tables).

    ``mobilenet_v3_small``: ``stem`` (features.0), ``block1``..``block11`` (the inverted
    residual blocks), ``last_conv`` (features.12, 576 channels), ``pool``, ``fc1`` (the
    1024-unit Linear, before its HardSwish), ``fc2`` (the classifier). ``squeezenet1_1``:
    ``conv1``, ``relu1``, ``pool1``, ``fire2``..``fire9``, ``pool3``, ``pool5``, ``conv10``,
    ``relu10``, ``pool10``.

    Example:
        >>> third_party_torch_friendly("squeezenet1_1")["fire9"]
        'features.12'
    """
    if arch == "mobilenet_v3_small":
        friendly = {"stem": "features.0", "last_conv": "features.12", "pool": "avgpool",
                    "fc1": "classifier.0", "fc2": "classifier.3"}
        friendly.update({f"block{i}": f"features.{i}" for i in range(1, 12)})
        return friendly
    if arch == "squeezenet1_1":
        fires = dict(zip(range(2, 10), (3, 4, 6, 7, 9, 10, 11, 12), strict=True))
        friendly = {"conv1": "features.0", "relu1": "features.1", "pool1": "features.2",
                    "pool3": "features.5", "pool5": "features.8", "conv10": "classifier.1",
                    "relu10": "classifier.2", "pool10": "classifier.3"}
        friendly.update({f"fire{k}": f"features.{i}" for k, i in fires.items()})
        return friendly
    raise ModelZooError(f"no friendly aliases for the torchvision architecture {arch!r}")


def keras_application_layers(arch: str) -> tuple[str, ...]:
    """The ``keras.applications`` layers worth an alias: activations, residual adds, the
    pooling and the classifier (convolutions and BatchNorms are folded by TensorFlow, or
    named after a neighbour by tf2onnx, so they get none).

    ``MobileNetV2``: ``Conv1_relu``, ``expanded_conv_depthwise_relu``,
    ``block_{k}_expand_relu``, ``block_{k}_depthwise_relu`` (k = 1..16), ``block_{k}_add``
    (the residual blocks), ``out_relu``, ``global_average_pooling2d``, ``predictions`` (the
    Softmax output: probabilities; ``logits`` is its input).

    Example:
        >>> keras_application_layers("MobileNetV2")[:3]
        ('Conv1_relu', 'expanded_conv_depthwise_relu', 'block_1_expand_relu')
    """
    if arch != "MobileNetV2":
        raise ModelZooError(f"no alias list for the keras.applications model {arch!r}")
    names = ["Conv1_relu", "expanded_conv_depthwise_relu"]
    residual = (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)  # same width, stride 1
    for k in range(1, 17):
        names += [f"block_{k}_expand_relu", f"block_{k}_depthwise_relu"]
        if k in residual:
            names.append(f"block_{k}_add")
    names += ["out_relu", "global_average_pooling2d", "predictions"]
    return tuple(names)


def check_aliases(graph: onnx.GraphProto, aliases: dict[str, str]) -> dict[str, str]:
    """Raise unless every alias names a tensor of ``graph``; return ``aliases``."""
    known = graph_tensor_names(graph)
    dangling = {a: t for a, t in aliases.items() if t not in known}
    if dangling:
        raise ModelZooError(f"aliases point to no tensor of the graph: {dangling}; this is a "
                            "model_zoo bug, please report it")
    return aliases
