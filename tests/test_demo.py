"""The demo entry point on two small models: exit code, page, JSON report and figures."""

import json

import converters  # noqa: F401  (blocks triton before torch / TensorFlow are imported)
from demo import parity, run, techniques

MODELS = ("lenet_dlg10", "resnet20_cifar")


def test_demo_writes_page_report_and_figures(tmp_path):
    code = run.main(["--out", str(tmp_path), "--models", ",".join(MODELS), "--quick"])
    assert code == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<table" in page and all(name in page for name in MODELS)
    # + feature inversion's comparison and history, gradient inversion's three comparisons,
    # and the visualization gallery's figures
    n_vis = sum(len(r[-1]) for r in techniques.VIS_RUNS + techniques.ATTR_RUNS)
    n_gi = len(techniques.GI_RUNS)
    assert page.count("data:image/png;base64,") == len(MODELS) + 2 + n_gi + n_vis
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["ok"] and report["failed"] == []
    assert [r["model"] for r in report["reports"]] == list(MODELS)
    assert all(r["ok"] and len(r["rows"]) == 5 for r in report["reports"])
    assert all(r["top1"]["agree"] for r in report["reports"])
    for name in MODELS:
        png = tmp_path / "images" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "parity.md").read_text(encoding="utf-8")
    assert md.count("| pass |") == len(MODELS)
    # the techniques section: feature inversion at three depths, figures embedded
    fi, gi, vis, attr = report["techniques"]
    assert fi["ok"] and set(fi["result"]["metrics"]) == set(techniques.FI_LAYERS)
    assert gi["ok"] and set(gi["runs"]) == {r[0] for r in techniques.GI_RUNS}
    assert "Gradient inversion" in page
    assert vis["ok"] and set(vis["runs"]) == {r[0] for r in techniques.VIS_RUNS}
    assert all(e["exit_code"] == 0 for e in vis["runs"].values())
    assert "Visualization gallery" in page
    assert attr["ok"] and set(attr["runs"]) == {r[0] for r in techniques.ATTR_RUNS}
    assert "Attribution and HDR-GAN" in page
    assert "Feature inversion" in page and (tmp_path / "feature_inversion/comparison.png").is_file()
    # a rerun of the demo replaces its own runs (a run folder refuses a second run otherwise)
    commands = [fi["command"], *[e["command"] for r in (gi, vis, attr)
                                 for e in r["runs"].values()]]
    assert all(c.endswith("--overwrite") for c in commands), commands


def test_unknown_model_names_the_valid_ones(tmp_path, capsys):
    code = run.main(["--out", str(tmp_path), "--models", "lenet_dlg10,no_such_net"])
    assert code != 0
    err = capsys.readouterr().err
    assert "no_such_net" in err and "resnet20_cifar" in err and "vgg16" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "index.html").exists()


def test_unwritable_out_dir_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert run.main(["--out", str(blocker / "demo"), "--models", "lenet_dlg10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to") and len(err.strip().splitlines()) == 1


def test_failing_and_broken_models_give_exit_1_and_are_named(tmp_path, monkeypatch, capsys):
    real = parity.cc.crosscheck

    def strict_or_broken(name, x, **kwargs):
        if name == "keras_cnn":
            raise RuntimeError("simulated importer crash")
        return real(name, x, **kwargs, forward_tol=1e-12)  # no float32 forward pass meets this

    monkeypatch.setattr(parity.cc, "crosscheck", strict_or_broken)
    code = run.main(["--out", str(tmp_path), "--models", "lenet_dlg10,keras_cnn", "--quick",
                      "--no-techniques"])
    assert code == 1
    assert "FAILED: lenet_dlg10, keras_cnn" in capsys.readouterr().err
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["failed"] == ["lenet_dlg10", "keras_cnn"]
    assert "simulated importer crash" in report["reports"][1]["error"]
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "FAIL" in page and "simulated importer crash" in page
