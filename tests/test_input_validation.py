"""Bad counts, sizes and pictures are refused at the door of ``python -m tf_impl``: exit 2, one
``error:`` line, no traceback, no output folder.

- counts (``--steps``, ``--batch``, ``--n``, window sizes...) at parse time (argparse's usage,
  then one error line);
- image specs (``name``, ``path``, ``cifar10:K``): one syntax, one function
  (:func:`tf_impl.images.parse_image_spec`), checked before the model is loaded: a missing file
  is "not found", a near bundled name gets a "did you mean";
- a model name typo gets a "did you mean";
- a picture smaller than the working size is upscaled with a note (printed and in
  ``result.json``); one below 8 pixels a side, or needing more than 8x upscaling, is refused;
- messages show plain values (``99``, not ``np.int64(99)``).

In-process through ``tf_impl.cli.main`` on resnet20_cifar (32x32); most cases never load a
model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image as PILImage

from tf_impl import images as imgs
from tf_impl.cli import build_parser, main
from tf_impl.config import plain
from tf_impl.visualization import checks


def _refused(argv, tmp_path, capsys) -> str:
    """Run ``argv`` with ``--out``; check exit 2, one ``error:`` line, no traceback, no folder;
    return the error line."""
    out = tmp_path / "out" / "run"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as exc:  # argparse: usage, then one error line
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists(), "a refused run must write nothing"
    return lines[0]


def _picture(path, side: int):
    PILImage.new("RGB", (side, side), (200, 40, 30)).save(path)
    return str(path)


# -- 1. counts ------------------------------------------------------------------------------
COUNTS = [
    (["gradient-inversion", "--model", "lenet_dlg10", "--attack", "dlg"], "--steps", "0"),
    (["gradient-inversion", "--model", "lenet_dlg10"], "--batch", "0"),
    (["gradient-inversion"], "--first", "-1"),
    (["gradient-inversion"], "--restarts", "0"),
    (["gradient-inversion"], "--seeds", "0"),
    (["feature-inversion", "--layer", "layer1"], "--steps", "0"),
    (["feature-inversion", "--layer", "layer1"], "--snapshot-every", "-1"),
    (["feature-inversion", "--layer", "layer1"], "--size", "8"),
    (["saliency"], "--size", "0"),
    (["saliency"], "--target", "-1"),
    (["occlusion"], "--window", "0"),
    (["occlusion"], "--stride", "0"),
    (["occlusion"], "--batch-size", "0"),
    (["class-viz", "--class", "3"], "--steps", "0"),
    (["class-viz", "--class", "3"], "--jitter", "-1"),
    (["class-viz", "--class", "3"], "--blur-every", "-1"),
    (["adversarial"], "--n", "0"),
    (["adversarial"], "--steps", "0"),
    (["deepdream"], "--octaves", "0"),
    (["deepdream"], "--steps", "0"),
    (["texture"], "--steps", "0"),
    (["texture"], "--output-size", "2"),
    (["style-transfer"], "--size", "4"),
    (["fast-style"], "--size", "0"),
    (["fast-style-train"], "--batch", "0"),
    (["fast-style-train"], "--steps", "0"),
    (["integrated-gradients"], "--steps", "0"),
    (["idgi"], "--batch-size", "0"),
    (["attribution-eval"], "--n", "0"),
    (["hdr-gan"], "--steps", "0"),
    (["hdr-gan"], "--moments", "0"),
]


@pytest.mark.parametrize("argv, flag, value", COUNTS,
                         ids=[f"{a[0]} {f} {v}" for a, f, v in COUNTS])
def test_counts_are_checked_at_parse_time(argv, flag, value, tmp_path, capsys):
    line = _refused([*argv, flag, value], tmp_path, capsys)
    assert f"argument {flag}" in line and f"got {value}" in line and ">=" in line


def test_zero_is_accepted_where_it_means_off_and_the_help_says_so(capsys):
    parser = build_parser()
    args = parser.parse_args(["feature-inversion", "--layer", "x", "--snapshot-every", "0"])
    assert args.snapshot_every == 0
    assert parser.parse_args(["class-viz", "--class", "1", "--jitter", "0"]).jitter == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["feature-inversion", "--help"])
    assert "(0: none)" in capsys.readouterr().out


# -- 2. a missing file, an unknown name -------------------------------------------------------
def test_a_missing_image_file_is_not_found(tmp_path, capsys):
    missing = str(tmp_path / "nope.png")
    line = _refused(["saliency", "--image", missing], tmp_path, capsys)
    assert f"image file {missing} not found" in line
    assert "imagenet_00_243" not in line  # no list of the 40 bundled names
    line = _refused(["saliency", "--image", "tiny.png"], tmp_path, capsys)  # relative path
    assert "image file tiny.png not found (relative to" in line


def test_an_unknown_image_name_gets_did_you_mean(tmp_path, capsys):
    line = _refused(["saliency", "--image", "astronot"], tmp_path, capsys)
    assert "did you mean astronaut?" in line and "imagenet_00_243" not in line
    line = _refused(["saliency", "--image", "qqqzzz"], tmp_path, capsys)
    assert "did you mean" not in line and "python -m tf_impl saliency --help" in line


# -- 3. a model name typo ---------------------------------------------------------------------
def test_a_model_typo_gets_did_you_mean(tmp_path, capsys):
    line = _refused(["saliency", "--model", "resnet20_cifr"], tmp_path, capsys)
    assert "unknown model 'resnet20_cifr': did you mean resnet20_cifar?" in line
    line = _refused(["feature-inversion", "--layer", "conv1_1", "--model", "vgg61_feat"],
                    tmp_path, capsys)
    assert "did you mean vgg16_features?" in line


# -- 4. one image-spec syntax for every command that takes a picture ---------------------------
PICTURE_FLAGS = [
    (["feature-inversion", "--layer", "layer1", "--image"]),
    (["saliency", "--image"]),
    (["guided-backprop", "--image"]),
    (["occlusion", "--image"]),
    (["adversarial", "--image"]),
    (["deepdream", "--image"]),
    (["texture", "--image"]),
    (["style-transfer", "--content"]),
    (["style-transfer", "--style"]),
    (["fast-style", "--image"]),
    (["fast-style-train", "--styles"]),
    (["integrated-gradients", "--image"]),
    (["idgi", "--image"]),
    (["fullgrad", "--image"]),
]


@pytest.mark.parametrize("argv", PICTURE_FLAGS, ids=[" ".join(a[::2]) for a in PICTURE_FLAGS])
def test_every_picture_option_takes_the_same_spec(argv, tmp_path, capsys):
    assert "K must be in [0, 1000)" in _refused([*argv, "cifar10:5000"], tmp_path, capsys)
    assert "did you mean astronaut?" in _refused([*argv, "astronot"], tmp_path, capsys)
    assert "nope.png not found" in _refused([*argv, str(tmp_path / "nope.png")], tmp_path,
                                            capsys)


def test_parse_image_spec(tmp_path):
    assert imgs.parse_image_spec("cifar10:3") == imgs.ImageSpec("cifar10", 3, "cifar10:3")
    assert imgs.parse_image_spec("astronaut").kind == "bundled"  # scikit-image's
    assert imgs.parse_image_spec("cat_dog").kind == "bundled"
    assert imgs.parse_image_spec("visualization/cat_dog").kind == "bundled"
    path = _picture(tmp_path / "p.png", 12)
    assert imgs.parse_image_spec(path) == imgs.ImageSpec("file", tmp_path / "p.png", path)
    for bad, match in [("cifar10:x", "K an integer"), ("", "image spec"),
                       (str(tmp_path), "is a folder")]:
        with pytest.raises(imgs.ImageError, match=match):
            imgs.parse_image_spec(bad)


# -- 5. sizes: upscaled with a note, refused below the minimum ---------------------------------
def test_a_tiny_picture_is_refused_with_its_size_and_the_fix(tmp_path, capsys):
    tiny = _picture(tmp_path / "tiny.png", 1)
    line = _refused(["saliency", "--image", tiny], tmp_path, capsys)
    assert "is 1x1 pixels" in line and "at least 8 pixels" in line


def test_a_size_that_contradicts_a_fixed_size_model_is_refused(tmp_path, capsys):
    line = _refused(["feature-inversion", "--model", "resnet20_cifar", "--layer", "layer1",
                     "--size", "64"], tmp_path, capsys)
    assert "takes 32x32 inputs only" in line and "--size 32" in line


def test_a_small_picture_is_upscaled_to_the_fixed_input_with_a_note(tmp_path, capsys):
    small = _picture(tmp_path / "small.png", 20)
    out = tmp_path / "fi"
    code = main(["feature-inversion", "--model", "resnet20_cifar", "--layer", "layer1",
                 "--image", small, "--steps", "1", "--no-lpips", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    note = "upscaled 1.6x from 20x20 (shorter side to 32)"
    assert f"note: {small}: {note}" in err
    record = json.loads((out / "result.json").read_text())
    assert record["size"] == [1, 3, 32, 32]  # the model's size, not the 224 default
    assert any(n.startswith(note) for n in record["notes"])


def test_upscale_limits():
    assert imgs.upscale_notes("p", 64, 48, 32) == []
    assert "upscaled 2.0x" in imgs.upscale_notes("p", 16, 20, 32)[0]
    with pytest.raises(imgs.ImageError, match=r"20x20 pixels.*at least 28 pixels.*at most 160"):
        imgs.upscale_notes("p", 20, 20, 224)  # 11.2x
    with pytest.raises(imgs.ImageError, match=r"7x300 pixels.*at least 8 pixels"):
        imgs.upscale_notes("p", 7, 300, 8)


# -- 6. plain values in messages --------------------------------------------------------------
def test_messages_show_plain_values():
    assert repr(plain(np.int64(99))) == "99"
    assert repr(plain((np.int64(1), [np.float32(0.5)]))) == "(1, [0.5])"
    assert plain("3") == "3" and plain(None) is None
    with pytest.raises(checks.VisualizationError) as info:
        checks.check_class(None, np.int64(99), classes=10)
    assert "class index 99 is out of range" in str(info.value)
    assert "np." not in str(info.value)


def test_image_messages_name_no_function(tmp_path):
    with pytest.raises(imgs.ImageError) as info:
        imgs.load_image(str(tmp_path / "gone.png"))
    assert "()" not in str(info.value) and "list_images" not in str(info.value)
