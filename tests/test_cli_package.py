"""The command line as a package (``tf_impl/cli/``): every command's help, ``layers``,
``model_zoo info PATH``, the contract flags reaching the model, and the package's import rules
(command modules import only ``common``, and no underscore names from anywhere).

Everything runs in-process through ``tf_impl.cli.main`` on small models (resnet20_cifar and a
Keras NHWC CNN exported here).
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pytest

import tf_impl.cli as cli
from tf_impl.cli import common

CLI_DIR = Path(cli.__file__).parent
# the commands that take no ONNX model (fast-style's --model is a saved style network)
NO_MODEL = {"fast-style", "fast-style-train", "hdr-gan", "sweep"}  # sweep: its grid names them
DEFAULT_MODELS = {
    "feature-inversion": "vgg16_features", "gradient-inversion": "resnet20_cifar",
    "saliency": "resnet20_cifar", "guided-backprop": "resnet20_cifar",
    "occlusion": "resnet20_cifar", "class-viz": "resnet20_cifar",
    "adversarial": "resnet20_cifar", "deepdream": "vgg16_features",
    "texture": "vgg16_features", "style-transfer": "vgg16_features",
    "integrated-gradients": "resnet20_cifar", "idgi": "resnet20_cifar",
    "fullgrad": "resnet20_cifar", "attribution-eval": "resnet20_cifar",
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = sorted(_subparsers(cli.build_parser()))


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def keras_nhwc(tmp_path_factory) -> Path:
    """A Keras CNN exported channels-last (NHWC input) with a Softmax head."""
    import keras

    from converters.tf_to_onnx import keras_to_onnx

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    path = tmp_path_factory.mktemp("keras") / "kcnn.onnx"
    keras_to_onnx(model, (None, 32, 32, 3), path, inputs_as_nchw=False)
    return path


# -- help ---------------------------------------------------------------------------------------
def test_the_package_lists_every_command():
    assert set(COMMANDS) == set(DEFAULT_MODELS) | NO_MODEL | {"layers"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_works(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m tf_impl " + command)
    has_contract = all(flag in text for flag in (
        "--contract", "--layout", "--bgr", "--rgb", "--scale", "--mean", "--std",
        "--input-size", "--output", "--logits", "--class-names"))
    assert has_contract == (command not in NO_MODEL)


def test_the_top_level_help_and_the_default_models(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "TECHNIQUE" in capsys.readouterr().out
    parsers = _subparsers(cli.build_parser())
    for command, model in DEFAULT_MODELS.items():
        assert parsers[command].get_default("model") == model, command


def test_existing_flags_next_to_the_contract_flags_keep_working():
    """texture's --output-size and --size, class-viz's --class, --out: not the contract's."""
    parser = cli.build_parser()
    args = parser.parse_args(["texture", "--output-size", "64", "--size", "48", "--output",
                              "features", "--out", "o"])
    assert (args.output_size, args.size, args.contract_output, args.out) == (
        64, 48, "features", "o")
    args = parser.parse_args(["class-viz", "--class", "3", "--class-names", "cifar10"])
    assert args.classes == ["3"] and args.contract_class_names == "cifar10"


# -- the contract flags -------------------------------------------------------------------------
def test_contract_overrides_merge_the_file_and_the_flags(tmp_path):
    parser = cli.build_parser()
    assert common.contract_overrides(parser.parse_args(["layers", "m.onnx"])) is None
    side = tmp_path / "c.json"
    side.write_text(json.dumps({"channel_order": "BGR", "scale": 255,
                                "mean": [103.939, 116.779, 123.68], "std": [1, 1, 1]}))
    args = parser.parse_args(["layers", "m.onnx", "--contract", str(side), "--rgb", "--layout",
                              "nhwc", "--input-size", "64", "--output", "logits"])
    fields = common.contract_overrides(args)
    assert fields["channel_order"] == "RGB" and fields["scale"] == 255
    assert fields["mean"] == [103.939, 116.779, 123.68] and fields["layout"] == "NHWC"
    assert fields["input_size"] == "64" and fields["output"] == "logits"


def test_flags_reach_the_model(tmp_path, capsys):
    code, out, _ = _run(["layers", "resnet20_cifar", "--bgr", "--class-names", "cifar10",
                         "--json", tmp_path / "l.json"], capsys)
    assert code == 0
    assert "channel_order BGR  [override]" in out
    rec = json.loads((tmp_path / "l.json").read_text())
    assert rec["contract"]["channel_order"] == "BGR"
    assert rec["contract_sources"]["channel_order"] == "override"
    model = common.load_model(argparse.Namespace(
        model="resnet20_cifar", contract_mean="0.5,0.5,0.5", contract_std="0.25,0.25,0.25"))
    assert model.preprocessing == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert type(model).__name__ == "ContractModel"


def test_layout_against_the_graph_exits_2_naming_the_layout(keras_nhwc, capsys):
    code, _, err = _run(["layers", keras_nhwc, "--layout", "nchw"], capsys)
    assert code == 2
    line = _error_line(err)
    assert "layout NCHW" in line and "NHWC" in line


@pytest.mark.parametrize("argv, match", [
    (["layers", "resnet20_cifar", "--mean", "1,2"], "mean has 2 values"),
    (["layers", "resnet20_cifar", "--contract", "{missing}"], "cannot read the contract file"),
    (["layers", "resnet20_cifar", "--contract", "{bad_json}"], "not valid JSON"),
    (["layers", "resnet20_cifar", "--logits", "no_such_tensor"], "no_such_tensor"),
    (["layers", "{not_onnx}"], "not an ONNX file"),
    (["layers", "{missing_onnx}"], "does not exist"),
    (["layers", "vgg17"], "unknown model"),
    (["saliency", "--mean", "1,2", "--out", "{out}"], "mean has 2 values"),
    (["feature-inversion", "--layer", "conv1_1", "--model", "{not_onnx}", "--out", "{out}"],
     "not an ONNX file"),
    (["saliency", "--model", "vgg16_features", "--out", "{out}"], "no classifier output"),
    (["gradient-inversion", "--model", "alexnet_features", "--out", "{out}"],
     "no classifier output"),
    (["integrated-gradients", "--model", "vgg16_features", "--out", "{out}"],
     "no classifier output"),
])
def test_bad_model_input_exits_2_with_one_line(argv, match, tmp_path, capsys):
    paths = {"missing": tmp_path / "none.json", "bad_json": tmp_path / "bad.json",
             "not_onnx": tmp_path / "model.txt", "missing_onnx": tmp_path / "gone.onnx",
             "out": tmp_path / "out" / "run"}
    paths["bad_json"].write_text("{layout: ")
    paths["not_onnx"].write_text("not a model")
    code, _, err = _run([a.format(**paths) for a in argv], capsys)
    assert code == 2
    assert match in _error_line(err) or match == "no classifier output" and \
        "is a feature map" in _error_line(err)
    assert not (tmp_path / "out").exists(), "a refused run must write nothing"


# -- layers and model_zoo info -------------------------------------------------------------------
def test_layers_on_a_zoo_model(tmp_path, capsys):
    code, out, _ = _run(["layers", "resnet20_cifar", "--json", tmp_path / "l.json"], capsys)
    assert code == 0
    assert "contract:" in out and "layout        NCHW  [graph]" in out
    assert "mean          0.485, 0.456, 0.406  [metadata]" in out
    rec = json.loads((tmp_path / "l.json").read_text())
    rows = {r["name"]: r for r in rec["tensors"]}
    assert [r["index"] for r in rec["tensors"]] == list(range(len(rows)))
    assert rows["input"]["op"] == "input" and rows["input"]["shape"] == [1, 3, 32, 32]
    conv1 = rows["/conv1/Conv_output_0"]
    assert conv1["aliases"] == ["conv1"] and conv1["shape"] == [1, 16, 32, 32]
    assert conv1["op"] == "Conv"
    assert "layer1" in rows["/layer1/layer1.2/Relu_1_output_0"]["aliases"]
    assert rows["/layer3/layer3.2/Relu_1_output_0"]["shape"] == [1, 64, 8, 8]
    assert rows["output"]["logits"] and rows["output"]["output"]
    assert rows["output"]["shape"] == [1, 10] and rows["output"]["op"] == "Gemm"
    assert sum(r["logits"] for r in rows.values()) == 1
    assert "<- logits, output" in out


def test_layers_on_a_keras_nhwc_file(keras_nhwc, tmp_path, capsys):
    code, out, _ = _run(["layers", keras_nhwc, "--json", tmp_path / "k.json"], capsys)
    assert code == 0
    assert "layout        NHWC  [graph]" in out and "probabilities  [graph]" in out
    rec = json.loads((tmp_path / "k.json").read_text())
    assert rec["inputs"][0]["shape"] == [None, 32, 32, 3]  # the graph's own input
    assert rec["working_input"] == [None, 3, 32, 32]
    rows = rec["tensors"]
    assert rows[0]["op"] == "input" and rows[0]["shape"] == [1, 3, 32, 32]  # channels-first
    convs = [r for r in rows if r["op"] == "Conv"]
    assert [r["shape"] for r in convs] == [[1, 8, 32, 32], [1, 16, 14, 14]]
    assert next(r for r in rows if r["op"] == "MaxPool")["shape"] == [1, 8, 16, 16]
    (logits,) = [r for r in rows if r["logits"]]
    (output,) = [r for r in rows if r["output"]]
    assert logits["name"] == rec["logits"] != output["name"] == "output"
    assert output["op"] == "Softmax" and logits["shape"] == [1, 10]


def test_model_zoo_info_takes_a_path(keras_nhwc, tmp_path, capsys):
    from model_zoo.__main__ import main as zoo_main

    assert zoo_main(["info", str(keras_nhwc)]) == 0
    out = capsys.readouterr().out
    assert "input   input (N, 32, 32, 3) float32, NHWC" in out
    assert "output  output (N, 10), probabilities" in out
    assert "contract:" in out and "layer aliases" in out and "logits  " in out
    (tmp_path / "m.txt").write_text("x")
    for bad in (tmp_path / "m.txt", tmp_path / "none.onnx"):
        assert zoo_main(["info", str(bad)]) == 2
        assert capsys.readouterr().err.startswith("error: ")


# -- library pieces the CLI calls ---------------------------------------------------------------
def test_private_batch_is_cifar_for_a_32x32_model():
    from tf_impl.gradient_inversion.private_batch import private_batch

    model = common.load_model(argparse.Namespace(model="resnet20_cifar"))
    pixels, x, y = private_batch(model, 2)
    assert pixels.shape == x.shape == (2, 3, 32, 32) and y.tolist() == [3, 8]
    assert 0 <= pixels.min() and pixels.max() <= 1 and x.min() < 0


# -- import rules -------------------------------------------------------------------------------
def _imports(path: Path):
    """(module, level, names) of every import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, 0, []


def test_cli_modules_import_only_common_and_no_private_names():
    modules = sorted(p for p in CLI_DIR.glob("*.py"))
    siblings = {p.stem for p in modules} - {"__init__"}
    assert {"common", "layers", "feature_inversion", "attribution"} <= siblings
    problems = []
    for path in modules:
        for module, level, names in _imports(path):
            private = [n for n in names if n.startswith("_")]
            private += [part for part in module.split(".") if part.startswith("_")
                        and part != "__future__"]
            if private:
                problems.append(f"{path.name} imports private {private} from {module!r}")
            if path.stem == "__init__":
                continue  # the package wires the command modules in
            # a sibling: `from .x import`, `from . import x`, `tf_impl.cli.x`
            if level == 1:
                targets = [module.split(".")[0]] if module else names
            elif module.startswith("tf_impl.cli"):
                targets = [module.split(".")[2] if module.count(".") >= 2 else "__init__"]
            else:
                targets = []
            for target in targets:
                if target != "common" or path.stem == "common":
                    problems.append(f"{path.name} imports the CLI module {target!r}")
    assert not problems, "\n".join(problems)
