"""Parity demo: every zoo model through our ONNX->TF importer, onnxruntime and PyTorch.

Command line::

    python -m converters.demo --out runs/demo                     # all zoo models
    python -m converters.demo --out runs/demo --models lenet_dlg10,resnet20_cifar --quick

Runs ``converters.crosscheck.crosscheck`` per model on one real input (CIFAR-10 test image
for 32x32 models, a bundled photo otherwise; ``--quick``: 128 not 224 for dynamic H/W),
prints the table and TF vs onnxruntime top-1, draws |d score / d input| from TF beside
PyTorch's, and writes ``index.html`` (self-contained), ``parity.json``, ``parity.md`` and
``images/*.png`` under ``--out``. Then the techniques: feature inversion of VGG16 features at
three depths (``feature_inversion/``, 224x224, 200 steps; ``--quick``: 64x64, 10 steps) and
gradient inversion of a CIFAR batch (``gradient_inversion/``: DLG on LeNet, GradInversion on
ResNet-20 with batch 2), shown on the same page. Exit status 0 if every model passes and every
technique ran, 1 if not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import gc
import html
import io
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import crosscheck as cc  # importing ``converters`` first blocks triton (see _compat)

CIFAR_INDEX = 0  # bundled CIFAR-10 test image #0 (a cat)
PHOTO = "visualization/cat_dog"
INTRO = " ".join("""Each ONNX model of the zoo runs in three runtimes on the same input: our
ONNX&rarr;TensorFlow importer (TF), onnxruntime (ORT, reference for the forward pass) and PyTorch
through onnx2torch (the reference for gradients). An error is the largest absolute difference
divided by the largest magnitude of the reference. The forward outputs must agree to <b>{fwd}</b>.
The input gradient of a fixed random projection of the output, &lang;w, f(x)&rang;, must agree
between TF and PyTorch to <b>{grad}</b> in float32 and to <b>{grad64}</b> in float64, where only
rounding differs. <i>ReLU inputs at the kink</i> counts pre-activation values within {kink}
(relative) of zero: float32 rounding decides which side of the kink such a value falls on, so the
frameworks may legitimately take different subgradients there and the float32 gradient may differ
while the float64 one agrees; the float32 gradient is then excused (amber). Figures show |d score /
d input| (max over colour channels; score = top-1 logit, or the mean feature for feature
extractors) from TF next to PyTorch and their difference, all on one colour scale. Models with
random weights (the ImageNet classifiers: torchvision's weights are not bundled) still have a
deterministic top-1 that TF and ORT must agree on, but the class itself is noise.""".split()
                 ).format(**{k: f"{v:.0e}".replace("e-0", "e-") for k, v in (
                     ("fwd", cc.FORWARD_TOL), ("grad", cc.GRADIENT_TOL),
                     ("grad64", cc.GRADIENT64_TOL), ("kink", cc.KINK_REL))})
TIMES = ("s ORT / s TF / s PT: seconds to build the model in that runtime and run one forward "
         "pass, as timed by crosscheck; s total: everything for the model (crosscheck with its "
         "float64 gradients and kink count, top-1, saliency, figure).")
CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:80em;color:#222}"
    "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #bbb;"
    "padding:.25em .4em;text-align:right;white-space:nowrap}th{background:#eee;white-space:normal}"
    "td:first-child,th:first-child{text-align:left}.ok{background:#d4f4d4}"
    ".bad{background:#f7c9c9}.kink{background:#fbe9b8}td.top1{white-space:normal}"
    ".figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(36em,1fr));gap:0 1.5em}"
    "figure{margin:1em 0}figcaption{font-size:.85em}img{width:100%}.wide{overflow-x:auto}")


def pick_input(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """(the file's own input, the picture's pixels NCHW in [0, 1], a description) of a real
    picture for ``name``: normalised for our exports, and for a third-party-style file in its
    own layout, channel order and scale (``info.file_contract``)."""
    import model_zoo
    from model_zoo import data

    info = model_zoo.info(name)
    h, w = info.input_shape[2:]
    if (h, w) == (32, 32):
        px, y = data.cifar10("test", n=CIFAR_INDEX + 1, normalize=False)
        px = px[CIFAR_INDEX:]
        desc = f"CIFAR-10 test #{CIFAR_INDEX} ({data.cifar10_class_names()[y[CIFAR_INDEX]]})"
    else:
        size = h if h is not None else (128 if quick else 224)
        px = data.image(PHOTO, size, normalize=False)
        desc = f"{PHOTO.split('/')[-1]} photo {size}x{size}"
    if info.file_contract is not None:
        return info.file_contract.model_input(px), px, desc
    return data.normalize_array(px, info.preprocessing), px, desc


def saliency_projection(name: str):
    """w for d<w, f(x)>/dx: the top class's one-hot for classifiers, else the output mean."""
    import model_zoo

    def w(ref: np.ndarray) -> np.ndarray:
        if model_zoo.info(name).num_classes:
            out = np.zeros_like(ref)
            out[0, int(np.argmax(ref[0]))] = 1.0
            return out
        return np.full_like(ref, 1.0 / ref.size)

    return w


def predictions(name: str, report) -> dict:
    """Top-1 of TF and ORT, and the saliency gradients of TF and PyTorch, from the report."""
    import model_zoo

    a = report.arrays
    g_tf, g_pt = a["grad_tf"], a["grad_pytorch"]
    out = {"saliency_max_rel": float(np.abs(g_tf - g_pt).max() / max(np.abs(g_pt).max(), 1e-30)),
           "g_tf": g_tf, "g_pt": g_pt}
    info = model_zoo.info(name)
    if info.num_classes:
        k_tf, k_ort = (int(np.argmax(a[key][0])) for key in ("output_tf", "output_onnxruntime"))
        tf_name, ort_name = (info.class_names[k] if info.class_names else f"class {k}"
                             for k in (k_tf, k_ort))
        out["top1"] = {"tf": tf_name, "ort": ort_name, "agree": k_tf == k_ort}
    return out


def figure(name: str, pixels: np.ndarray, desc: str, pred: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import model_zoo

    x = pixels
    img = np.clip(pixels[0].transpose(1, 2, 0), 0, 1)
    g_tf, g_pt = pred["g_tf"][0], pred["g_pt"][0]
    contract = model_zoo.info(name).file_contract
    if contract is not None and contract.layout == "NHWC":  # gradients in the file's layout
        g_tf, g_pt = g_tf.transpose(2, 0, 1), g_pt.transpose(2, 0, 1)
    maps = [np.abs(g).max(axis=0) for g in (g_tf, g_pt, g_tf - g_pt)]
    vmax = float(np.percentile(maps[1], 99.5)) or 1.0
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), dpi=72)
    nearest = "nearest" if x.shape[-1] <= 64 else "antialiased"
    axes[0].imshow(img, interpolation=nearest)
    axes[0].set_title(desc, fontsize=12)
    titles = ("|input grad|, TF (importer)", "|input grad|, PyTorch", "|TF - PyTorch|")
    for ax, m, title in zip(axes[1:], maps, titles, strict=True):
        ax.imshow(m, cmap="inferno", vmin=0, vmax=vmax, interpolation=nearest)
        ax.set_title(title, fontsize=12)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{name}: TF vs PyTorch saliency, max rel diff "
                 f"{pred['saliency_max_rel']:.1e}", fontsize=13)
    fig.tight_layout()
    fig.savefig(buf := io.BytesIO(), format="png")
    plt.close(fig)
    return buf.getvalue()


def short(what: str) -> str:
    return (what.replace("forward ", "fwd ").replace("input gradient", "grad")
            .replace("onnxruntime", "ORT").replace("PyTorch", "PT").replace("(float64)", "f64"))


def top1_text(r: dict) -> str:
    t = r.get("top1")
    if not t:
        return "n/a"
    return f"{t['tf']} (both)" if t["agree"] else f"TF {t['tf']} ≠ ORT {t['ort']}"


def table_rows(results: list[dict]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows of (text, css class) cells; amber for an excused float32 gradient."""
    whats = next((r["rows"] for r in results if r.get("rows")), [])
    head = (["model", "weights", "input"] + [short(w["what"]) for w in whats] + ["ReLU kinks",
            "s ORT", "s TF", "s PT", "s total", "top-1 TF vs ORT", "status"])
    body = []
    for r in results:
        cells = [(r["model"], ""), ("pretrained" if r["pretrained"] else "random", ""),
                 ("x".join(map(str, r["input_shape"])), "")]
        cells += [(f"{w['max_rel']:.1e}", "ok" if w["ok"] else "kink" if r["ok"] else "bad")
                  for w in r.get("rows", [])] or [("", "")] * len(whats)
        secs = [r.get("seconds", {}).get(k) for k in ("onnxruntime", "tensorflow", "pytorch")]
        cells += [(str(r.get("relu_near_kink", "")), "")] + [
            (f"{v:.1f}" if v is not None else "", "") for v in secs + [r["total_seconds"]]]
        cells += [(top1_text(r), "top1" if (r.get("top1") or {}).get("agree", True) else "bad"),
                  ("pass", "ok") if r["ok"] else (r.get("error", "FAIL"), "bad")]
        body.append(cells)
    return head, body


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
            "--out", str(folder)]
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
        argv = ["gradient-inversion", *extra, "--quiet", "--out", str(folder)]
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
        cmd = [*argv, *(small if quick else full), "--quiet", "--out", str(folder)]
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


def visualization_html(out: Path, tech: dict) -> str:
    esc = html.escape
    heading, text = {"visualization": ("Visualization gallery", VIS_TEXT),
                     "attribution": ("Attribution and HDR-GAN", ATTR_TEXT)}[tech["technique"]]
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td{'' if e['exit_code'] == 0 else ' class=bad'}>"
        f"{'ok' if e['exit_code'] == 0 else 'failed (exit ' + str(e['exit_code']) + ')'}</td>"
        f"<td>{e['seconds']:.1f}</td><td><code>{esc(e['command'])}</code></td></tr>"
        for name, e in tech["runs"].items())
    imgs = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode((out / p).read_bytes()).decode()}" '
        f'alt="{esc(p)}">' for p in tech["images"])
    return (f"<h2>{heading}</h2><p>{text}</p><table><tr><th>technique</th>"
            f"<th>status</th><th>seconds</th><th>command</th></tr>{rows}</table>"
            f"<p>({tech['seconds']:.0f} s)</p>{imgs}")


def gradient_inversion_html(out: Path, tech: dict) -> str:
    esc = html.escape
    rows = ""
    for name, entry in tech["runs"].items():
        r = entry.get("result")
        if r is None:
            rows += (f"<tr><td>{esc(name)}</td><td class='bad' colspan='5'>failed (exit "
                     f"{entry['exit_code']})</td></tr>")
            continue
        m = r["metrics"]
        weights = " (untrained)" if r.get("weights") == "seeded random" else ""
        rows += (f"<tr><td>{esc(name)}</td><td>{esc(r['model'] + weights)}</td>"
                 f"<td>{r['true_labels']} / {r['restored_labels']}</td>"
                 f"<td>{m['psnr_mean']:.2f}</td><td>{m['lpips_mean']:.3f}</td>"
                 f"<td>{r['steps']}</td></tr>")
    imgs = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode((out / p).read_bytes()).decode()}" '
        f'alt="{esc(p)}">' for p in tech["images"])
    cmds = "<br>".join(f"<code>{esc(e['command'])}</code>" for e in tech["runs"].values())
    return (f"<h2>Gradient inversion</h2><p>{GI_TEXT}</p><table><tr><th>attack</th><th>model"
            "</th><th>true / restored labels</th><th>PSNR (dB)</th><th>LPIPS</th><th>steps</th>"
            f"</tr>{rows}</table><p>{cmds} ({tech['seconds']:.0f} s)</p>{imgs}")


def technique_html(out: Path, tech: dict) -> str:
    if tech["technique"] == "gradient_inversion":
        return gradient_inversion_html(out, tech)
    if tech["technique"] in ("visualization", "attribution"):
        return visualization_html(out, tech)
    esc = html.escape
    if not tech.get("images"):
        return (f"<h2>Feature inversion</h2><p class='bad'>failed (exit {tech['exit_code']}): "
                f"<code>{esc(tech['command'])}</code></p>")
    metrics = tech["result"]["metrics"]
    rows = "".join(
        f"<tr><td>{esc(layer)}</td><td>{m.get('psnr', float('nan')):.2f}</td>"
        f"<td>{m.get('ssim', float('nan')):.3f}</td><td>{m.get('lpips_vgg', float('nan')):.3f}"
        f"</td><td>{tech['result']['steps'][layer]}</td></tr>" for layer, m in metrics.items())
    imgs = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode((out / p).read_bytes()).decode()}" '
        f'alt="{esc(p)}">' for p in tech["images"])
    return (f"<h2>Feature inversion</h2><p>{FI_TEXT}</p><table><tr><th>layer</th><th>PSNR (dB)"
            f"</th><th>SSIM</th><th>LPIPS (vgg)</th><th>steps</th></tr>{rows}</table>"
            f"<p><code>{esc(tech['command'])}</code> ({tech['seconds']:.0f} s)</p>{imgs}")


def write_outputs(out: Path, results: list[dict], total: float,
                  techniques: list[dict] | None = None) -> None:
    head, body = table_rows(results)
    failed = [r["model"] for r in results if not r["ok"]]
    summary = (f"{len(results) - len(failed)}/{len(results)} models pass; {total:.0f} s on "
               f"{os.cpu_count()} CPU cores" + (f"; failed: {', '.join(failed)}" if failed else ""))
    (out / "parity.json").write_text(json.dumps(
        {"ok": not failed, "failed": failed, "seconds": round(total, 2),
         "tolerances": {"forward": cc.FORWARD_TOL, "gradient": cc.GRADIENT_TOL,
                        "gradient_float64": cc.GRADIENT64_TOL, "kink_rel": cc.KINK_REL},
         "reports": results, "techniques": techniques or []}, indent=2))
    md = [f"# ONNX->TF parity\n\n{summary}\n", "| " + " | ".join(head) + " |",
          "|" + "---|" * len(head)] + ["| " + " | ".join(t for t, _ in row) + " |" for row in body]
    (out / "parity.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    esc = html.escape
    trs = "".join("<tr>" + "".join(f'<td class="{c}">{esc(t)}</td>' for t, c in row) + "</tr>"
                  for row in body)
    figs = "".join(
        f'<figure><img src="data:image/png;base64,'
        f'{base64.b64encode((out / r["image"]).read_bytes()).decode()}" alt="{esc(r["model"])}">'
        f"<figcaption><b>{esc(r['model'])}</b>: {esc(r['description'])}. Input: "
        f"{esc(r['input'])}. Top-1 TF vs ORT: {esc(top1_text(r))}.</figcaption></figure>"
        for r in results if r.get("image"))
    (out / "index.html").write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ONNX to TF parity'
        f"</title><style>{CSS}</style></head><body><h1>ONNX &rarr; TensorFlow importer: "
        f"parity with onnxruntime and PyTorch</h1><p>{INTRO}</p><p><b>{esc(summary)}</b>.</p>"
        f'<h2>Parity table (max relative error)</h2><div class="wide"><table><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head) + f"</tr>{trs}</table></div><p>{TIMES}"
        f'</p><h2>Input gradients, TF vs PyTorch</h2><div class="figs">{figs}</div>'
        + "".join(technique_html(out, t) for t in techniques or [])
        + "</body></html>\n", encoding="utf-8")


def run_model(name: str, quick: bool, out: Path) -> dict:
    import model_zoo

    t0, info = time.perf_counter(), model_zoo.info(name)
    res = {"model": name, "input_shape": [], "input": "", "ok": False,
           "description": info.description, "pretrained": info.default_pretrained}
    try:
        x, pixels, desc = pick_input(name, quick)
        res.update(input_shape=list(x.shape), input=desc)
        report = cc.crosscheck(name, x, projection=saliency_projection(name), keep_arrays=True)
        pred = predictions(name, report)
        png = figure(name, pixels, desc, pred)
    except Exception as err:  # one broken model must not hide the others' results
        res.update(error=f"{type(err).__name__}: {err}"[:300],
                   total_seconds=round(time.perf_counter() - t0, 2))
        return res
    (out / "images").mkdir(exist_ok=True)
    (out / "images" / f"{name}.png").write_bytes(png)
    res.update(report.to_dict(), image=f"images/{name}.png", table=report.table(),
               saliency_max_rel=pred["saliency_max_rel"], top1=pred.get("top1"),
               total_seconds=round(time.perf_counter() - t0, 2))
    return res


def main(argv: list[str] | None = None) -> int:
    import model_zoo

    parser = argparse.ArgumentParser(prog="python -m converters.demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--models", help="comma-separated zoo names (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="128x128 photos for models with dynamic height/width; techniques "
                        "at toy sizes")
    parser.add_argument("--no-techniques", action="store_true",
                        help="only the parity table (skip feature inversion & co.)")
    args = parser.parse_args(argv)
    names = model_zoo.available()
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in names]
        if unknown or not wanted:
            what = f"unknown model(s) {', '.join(unknown)}" if unknown else "no model names given"
            print(f"error: {what}; valid models: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=args.out).close()
    except OSError as err:
        print(f"error: cannot write to {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module="onnx2torch")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices per shape
    start, results = time.perf_counter(), []
    for i, name in enumerate(names, 1):
        results.append(res := run_model(name, args.quick, args.out))
        gc.collect()  # the big models of this one go before the next loads
        status = "pass" if res["ok"] else ("ERROR" if "error" in res else "FAIL")
        if res["ok"] and not all(w["ok"] for w in res["rows"]):
            status += " (float32 gradient excused: ReLU inputs at the kink, float64 agrees)"
        top1 = f"  top-1 TF vs ORT: {top1_text(res)}" if res.get("top1") else ""
        print(f"[{i}/{len(names)}] {name}: {status} in {res['total_seconds']:.1f} s{top1}")
        print(res.get("table", res.get("error")), flush=True)
    techniques = []
    if not args.no_techniques:
        print("feature inversion (VGG16 features, astronaut)...", flush=True)
        techniques.append(run_feature_inversion(args.out, args.quick))
        print("gradient inversion (DLG on LeNet, Inverting Gradients on an untrained ResNet-20, "
              "GradInversion on the trained one)...", flush=True)
        techniques.append(run_gradient_inversion(args.out, args.quick))
        print("visualization gallery (saliency, class viz, adversarial, DeepDream, style)...",
              flush=True)
        techniques.append(run_visualization(args.out, args.quick))
        print("attribution (IG, IDGI, FullGrad, insertion/deletion) and HDR-GAN...", flush=True)
        techniques.append(run_visualization(args.out, args.quick, technique="attribution",
                                            runs=ATTR_RUNS))
    total = time.perf_counter() - start
    write_outputs(args.out, results, total, techniques)
    failed = [r["model"] for r in results if not r["ok"]]
    for t in techniques:
        print(f"{t['technique']}: {'done' if t['ok'] else 'FAILED'} in {t['seconds']:.0f} s")
    print(f"{len(names) - len(failed)}/{len(names)} models pass in {total:.0f} s; wrote "
          f"{args.out / 'index.html'}")
    failed += [t["technique"] for t in techniques if not t["ok"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
