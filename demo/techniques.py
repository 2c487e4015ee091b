"""The demo's technique sections: each runs ``python -m tf_impl <technique>`` on small settings
and keeps the exit code, the command, the result and the figures to show."""

from __future__ import annotations

import json
import time
from pathlib import Path

FI_LAYERS = ("conv1_2", "conv3_1", "conv5_1")
FI_TEXT = " ".join("""Feature inversion (Mahendran &amp; Vedaldi 2015): starting from noise, Adam
finds an image whose activations at one layer of the ImageNet-pretrained VGG16 match those of
the photo, with a total-variation prior, inside the valid pixel box. Shallow layers keep almost
everything (high PSNR, low LPIPS); deep layers keep what the network needs to recognise the
scene and lose colour and exact position. Made by <code>python -m tf_impl feature-inversion
</code>; the PyTorch reference reaches the same images step for step (tests).""".split())


def run_feature_inversion(out: Path, quick: bool) -> dict:
    """The feature-inversion section: the CLI on VGG16 features, three depths."""
    from tf_impl.cli import main as tf_impl_main

    size, steps = (64, 10) if quick else (224, 200)
    folder = out / "feature_inversion"
    argv = ["feature-inversion", "--model", "vgg16_features", "--layer", ",".join(FI_LAYERS),
            "--image", "astronaut", "--size", str(size), "--steps", str(steps), "--quiet",
            "--out", str(folder), "--overwrite"]  # a rerun of the demo replaces its runs
    t0 = time.perf_counter()
    code = tf_impl_main(argv)
    res = {"technique": "feature_inversion", "ok": code == 0, "exit_code": code,
           "command": "python -m tf_impl " + " ".join(argv),
           "seconds": round(time.perf_counter() - t0, 2)}
    if (folder / "result.json").is_file():
        res["result"] = json.loads((folder / "result.json").read_text())
        res["images"] = ["feature_inversion/comparison.png", "feature_inversion/history.png"]
    return res


GI_TEXT = " ".join("""Gradient inversion: a federated-learning client shares the gradient of its
loss on a private batch of real CIFAR-10 test images. The labels are read off the last layer's
gradient (iDLG / GradInversion's column-wise minimum / a duplicate-aware rule), then the images
are recovered by matching the gradient. <b>Where the attack works</b>: DLG (L-BFGS, soft
labels) on DLG's LeNet, and Inverting Gradients (cosine gradient distance, signed Adam, a light
TV prior, 4,000 steps) on an <i>untrained</i> CIFAR ResNet-20 (seeded random weights, BN eval:
a model early in training), batch 1, whose reconstruction is recognizable. <b>The hard
case</b>, kept as it is: GradInversion (Adam with TV, L2 and BatchNorm priors, group
consistency, Langevin noise) on the <i>trained</i> ResNet-20 at batch 2 with a short budget:
its tiny, confident gradients (some images have p(label) = 1 in float32 and share no gradient
at all) leave noise; breaching's attacks do no better on the same gradient
(benchmarks/results/gradient_inversion_anchor_*.md). Made by
<code>python -m tf_impl gradient-inversion</code>.""".split())

# (name, CLI arguments, full-run extras, quick extras)
GI_RUNS = (
    ("dlg", ["--model", "lenet_dlg", "--attack", "dlg", "--batch", "1"], ["--steps", "100"],
     ["--steps", "3"]),
    ("inverting-gradients-untrained",
     ["--model", "resnet20_cifar", "--untrained", "--attack", "inverting-gradients", "--batch",
      "1", "--tv-weight", "1e-3"], ["--steps", "4000"], ["--steps", "2", "--no-compile"]),
    ("gradinversion-trained",
     ["--model", "resnet20_cifar", "--attack", "gradinversion", "--batch", "2", "--seeds", "2"],
     ["--steps", "200"], ["--steps", "2", "--no-compile"]),
)


def run_gradient_inversion(out: Path, quick: bool) -> dict:
    """The gradient-inversion section: the cases where the attack works (DLG on LeNet,
    Inverting Gradients on an untrained ResNet-20) and the trained ResNet-20's hard case."""
    from tf_impl.cli import main as tf_impl_main

    runs = {name: [*args, *(small if quick else full)] for name, args, full, small in GI_RUNS}
    res = {"technique": "gradient_inversion", "ok": True, "runs": {}, "images": []}
    t0 = time.perf_counter()
    for name, extra in runs.items():
        folder = out / "gradient_inversion" / name
        argv = ["gradient-inversion", *extra, "--quiet", "--out", str(folder), "--overwrite"]
        code = tf_impl_main(argv)
        entry = {"command": "python -m tf_impl " + " ".join(argv), "exit_code": code}
        if code == 0 and (folder / "result.json").is_file():
            entry["result"] = json.loads((folder / "result.json").read_text())
            res["images"].append(f"gradient_inversion/{name}/comparison.png")
        else:
            res["ok"] = False
        res["runs"][name] = entry
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


VIS_TEXT = " ".join("""CNN visualization on the trained CIFAR ResNet-20 and the
ImageNet-pretrained VGG16 features: backprop saliency with a GrabCut segmentation seeded by
it, guided backprop (the guided
rule on every Relu node of the imported graph), occlusion, class model visualization, a PGD
adversarial attack at L-inf 8/255, DeepDream, Gatys' style transfer and the shipped three-style
feed-forward network. Every map and step is cross-checked against Captum or a PyTorch
transcription on the onnx2torch model (see benchmarks/results/). Made by
<code>python -m tf_impl &lt;technique&gt;</code>.""".split())

# (name, CLI arguments, full-run extras, quick extras, the figures shown)
VIS_RUNS = (
    ("saliency", ["saliency", "--image", "cifar10:3", "--segment"], [], [],
     ["overlay.png", "segmentation.png"]),
    ("guided-backprop", ["guided-backprop", "--image", "cifar10:3"], [], [], ["overlay.png"]),
    ("occlusion", ["occlusion", "--image", "cifar10:3"], [], [], ["overlay.png"]),
    ("class-viz", ["class-viz", "--class", "0,1,7,8"], ["--steps", "150"], ["--steps", "2"],
     ["figure.png"]),
    ("adversarial", ["adversarial", "--n", "4"], [], ["--steps", "2"], ["comparison.png"]),
    ("deepdream", ["deepdream", "--image", "snake", "--layer", "relu4_3"],
     ["--size", "160", "--octaves", "3", "--steps", "5"],
     ["--size", "48", "--octaves", "1", "--steps", "1"], ["comparison.png"]),
    ("style-transfer", ["style-transfer"], ["--size", "128", "--steps", "100"],
     ["--size", "32", "--steps", "2"], ["comparison.png"]),
    ("fast-style", ["fast-style", "--blend", "0.5,0,0.5"], ["--size", "256"], ["--size", "64"],
     ["styles.png"]),
)


ATTR_TEXT = " ".join("""Attribution on the trained CIFAR ResNet-20: Integrated Gradients, IDGI
on the Guided IG path (exactly complete at any number of steps), FullGrad (input gradient plus
every layer's bias gradients), and the insertion/deletion comparison of all the methods on a few
test images (the 200-image table is benchmarks/results/attribution.md). Then HDR-GAN's
objectives: a tiny network merging three synthetic exposures, trained with the mu-law
tonemapped L1 and the hypersphere adversarial loss. Made by <code>python -m tf_impl
&lt;technique&gt;</code>.""".split())

ATTR_RUNS = (
    ("integrated-gradients", ["integrated-gradients", "--image", "cifar10:3"], [],
     ["--steps", "4"], ["overlay.png"]),
    ("idgi", ["idgi", "--image", "cifar10:3", "--method", "guided-ig"], [], ["--steps", "4"],
     ["overlay.png"]),
    ("fullgrad", ["fullgrad", "--image", "cifar10:3"], [], [], ["overlay.png"]),
    ("attribution-eval", ["attribution-eval"], ["--n", "8", "--steps", "16"],
     ["--n", "2", "--steps", "2", "--methods", "ig,idgi_ig,saliency"], ["curves.png"]),
    ("hdr-gan", ["hdr-gan"], ["--steps", "150"], ["--steps", "2", "--quick"], ["hdr_gan.png"]),
)


def run_visualization(out: Path, quick: bool, *, technique: str = "visualization",
                      runs=VIS_RUNS) -> dict:
    """A gallery section: each CLI technique of ``runs`` once, at a small setting."""
    from tf_impl.cli import main as tf_impl_main

    res = {"technique": technique, "ok": True, "runs": {}, "images": []}
    t0 = time.perf_counter()
    for name, argv, full, small, figures in runs:
        folder = out / technique / name
        cmd = [*argv, *(small if quick else full), "--quiet", "--out", str(folder), "--overwrite"]
        t1 = time.perf_counter()
        code = tf_impl_main(cmd)
        entry = {"command": "python -m tf_impl " + " ".join(cmd), "exit_code": code,
                 "seconds": round(time.perf_counter() - t1, 2)}
        shown = [f"{technique}/{name}/{f}" for f in figures if (folder / f).is_file()]
        if code != 0 or not shown:
            res["ok"] = False
        res["images"] += shown
        res["runs"][name] = entry
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


