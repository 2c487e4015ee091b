"""Bad input to ``python -m converters.crosscheck``: one ``error: <file>: <problem>; <fix>``
line on stderr, exit status 2, never a traceback (the shape of ``python -m tf_impl``).
Run in-process through ``main()`` on copies of the tiny ``lenet_dlg10``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_checks import one_error_line

import model_zoo
from converters.crosscheck import CrossCheckError, main
from converters.crosscheck.runtimes import ort_run, read_proto

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lenet_file() -> Path:
    return Path(model_zoo.load("lenet_dlg10"))



def _set_location(model: onnx.ModelProto, location: str) -> None:
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location


@pytest.fixture
def external(lenet_file, tmp_path):
    """``external(case)``: lenet_dlg10 saved with its weights in ``model.data``, then broken:
    ``missing`` (data file deleted), ``moved`` (location names a subfolder the file is not
    in), ``outside`` (``../x.data``), ``absolute`` (an absolute location), ``short`` (the
    data file cut). Returns (model path, the data file's name as the message gives it)."""

    def make(case: str) -> tuple[Path, str]:
        folder = tmp_path / case / "sub"
        folder.mkdir(parents=True)
        path = folder / "model.onnx"
        onnx.save_model(onnx.load(str(lenet_file)), str(path), save_as_external_data=True,
                        location="model.data", size_threshold=0)
        data = folder / "model.data"
        if case == "missing":
            data.unlink()
            return path, str(data)
        if case == "short":
            data.write_bytes(data.read_bytes()[:1000])
            return path, "model.data"
        proto = onnx.load(str(path), load_external_data=False)
        location = {"moved": "weights/model.data", "outside": "../x.data",
                    "absolute": str(tmp_path / case / "x.data")}[case]
        if case != "moved":
            shutil.move(data, tmp_path / case / "x.data")
        _set_location(proto, location)
        onnx.save(proto, str(path))
        return path, location

    return make


# -- 1. a zoo-name typo ---------------------------------------------------------------------------
def test_zoo_name_typo_says_did_you_mean(capsys):
    one_error_line(capsys, main(["resnet20_cifr"]), "resnet20_cifr",
                    "did you mean resnet20_cifar")
    one_error_line(capsys, main(["lenet_dlg1"]), "did you mean lenet_dlg10")


# -- 2. external data onnxruntime (and our importer) refuse --------------------------------------
@pytest.mark.parametrize("case, needles", [
    ("missing", ("is missing", "put the data file back next to the .onnx", "onnx.save(onnx.load(")),
    ("moved", ("is missing", "put the data file back next to the .onnx")),
    ("outside", ("outside the model's folder", "move the data file next to the model")),
    ("absolute", ("outside the model's folder", "with the data embedded")),
    ("short", ("could not be read", "truncated", "save the model and its data again")),
])
def test_refused_external_data_names_the_model_its_data_and_the_fix(external, capsys, case,
                                                                    needles):
    path, data = external(case)
    one_error_line(capsys, main([str(path)]), str(path), data, *needles)


def test_the_reference_readers_name_refused_external_data(external, lenet_file):
    # onnx and onnxruntime read the file themselves: their refusal is one line too
    path, data = external("missing")
    with pytest.raises(CrossCheckError) as err:
        read_proto(path)
    assert str(path) in str(err.value) and "onnx refuses its external data" in str(err.value)
    proto = onnx.load(str(path), load_external_data=False)
    out = proto.graph.output[0].name
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(CrossCheckError) as err:
        ort_run(path, proto, [out], proto.graph.input[0].name, x)
    msg = str(err.value)
    assert msg.startswith(f"{path}: onnxruntime refuses its external data"), msg
    assert data in msg and "re-save the model with the data embedded" in msg, msg


# -- 3. a truncated file --------------------------------------------------------------------------
def test_truncated_file_is_named_and_to_be_exported_again(lenet_file, tmp_path, capsys):
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(lenet_file.read_bytes()[:3000])
    one_error_line(capsys, main([str(trunc)]), str(trunc), "our importer cannot load it",
                    "truncated or not an ONNX model", "export it again")


def test_the_reference_readers_call_a_truncated_file_truncated(lenet_file, tmp_path):
    # our importer refuses the file first; onnx and onnxruntime on their own say the same
    # (onnx2torch only ever gets the graph onnx read)
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(lenet_file.read_bytes()[:3000])
    with pytest.raises(CrossCheckError) as err:
        read_proto(trunc)
    assert str(err.value).startswith(f"{trunc}: onnx cannot parse it")
    assert "truncated or not an ONNX model: export it again" in str(err.value)
    proto = onnx.load(str(lenet_file))
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(CrossCheckError) as err:
        ort_run(trunc, proto, [proto.graph.output[0].name], proto.graph.input[0].name, x)
    assert str(err.value).startswith(f"{trunc}: onnxruntime cannot parse it"), str(err.value)
    assert "truncated or not an ONNX model: export it again" in str(err.value)


# -- 4. a missing path, a folder, a non-.onnx file, an empty file ---------------------------------
@pytest.mark.parametrize("case, needles", [
    ("missing.onnx", ("no ONNX file there", "give the path of an existing .onnx file")),
    ("missing_no_suffix", ("neither an existing file nor a zoo model",)),
    ("folder", ("is a folder, not an ONNX file",)),
    ("folder.onnx", ("is a folder, not an ONNX file",)),
    ("model.txt", ("not an ONNX file (expected the .onnx suffix)", "export the model to ONNX")),
    ("empty.onnx", ("the file is empty (0 bytes)", "export it again")),
])
def test_paths_that_are_no_onnx_file(lenet_file, tmp_path, capsys, case, needles):
    path = tmp_path / case
    if case.startswith("folder"):
        path.mkdir()
    elif case == "model.txt":
        shutil.copy(lenet_file, path)  # a real ONNX graph, but not named as one
    elif case == "empty.onnx":
        path.touch()
    one_error_line(capsys, main([str(path)]), str(path), *needles)


# -- 6. bad option values: refused before any work ------------------------------------------------
@pytest.mark.parametrize("flags, needles", [
    (["--batch", "0"], ("--batch 0", "at least 1")),
    (["--batch", "-2"], ("--batch -2", "at least 1")),
    (["--seed", "-1"], ("--seed -1", "0 or more")),
    (["--forward-tol", "nan"], ("--forward-tol nan", "finite number")),
    (["--gradient-tol=-1e-4"], ("--gradient-tol -0.0001", "0 or more")),
    (["--json", "{tmp}/no/such/folder/report.json"], ("has no folder", "existing folder")),
    (["--json", "{tmp}"], ("is a folder",)),
])
def test_bad_option_values_are_one_line(tmp_path, capsys, flags, needles):
    flags = [f.format(tmp=tmp_path) for f in flags]
    one_error_line(capsys, main(["lenet_dlg10", *flags]), *needles)


def test_exit_3_stays_for_an_unavailable_reference(tmp_path, capsys, monkeypatch):
    # the reference side failing is no bad input: the table and exit status 3, no error line
    from converters import onnx_to_torch

    def refuse(*args, **kwargs):
        raise NotImplementedError("no converter for this op")

    monkeypatch.setattr(onnx_to_torch, "load", refuse)
    assert main(["lenet_dlg10"]) == 3
    captured = capsys.readouterr()
    assert "REFERENCE UNAVAILABLE" in captured.out and "no converter" in captured.out
    assert "error:" not in captured.err and "Traceback" not in captured.err

