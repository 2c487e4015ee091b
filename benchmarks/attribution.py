"""Attribution methods compared by insertion / deletion AUC; FullGrad parity and completeness.

    python -m benchmarks.attribution            # full run (~15-20 min on 2 busy cores)
    python -m benchmarks.attribution --quick    # 8 images, 8 path steps (checks the script)
    python -m benchmarks.attribution --n 64     # fewer images

Writes ``benchmarks/results/attribution.json`` and ``attribution.md`` (``_quick`` with
``--quick``) and prints the tables.

1. Comparison on resnet20_cifar (trained; 91.5 % top-1 on the bundled test images): the first
   ``--n`` (200) *correctly classified* bundled CIFAR-10 test images, each explained for its
   true class by IG, IDGI on IG, Guided IG, IDGI on Guided IG, Blur IG, IDGI on Blur IG,
   backprop saliency (``tf_impl.visualization.saliency``: max over channels of |dS/dx|) and
   FullGrad, each at its defaults (IG 50 Gauss-Legendre points; IDGI 50 / 200 / 100 path steps
   on IG / Guided IG / Blur IG, as the IDGI paper runs it at its base's settings; Guided IG 200
   steps, fraction 0.25, max_dist 0.02; Blur IG 100 steps, max sigma 50). Pixels are ranked by
   the attribution summed over channels (the maps as they are), and insertion (from RISE's blur)
   / deletion (to zeros in input space, the mean colour) change 8/224 of the pixels per step
   (``tf_impl.attribution.evaluation``; Petsiuk et al. 2018). Mean +- standard error over the
   images; for each base method, IDGI minus base per image (paired): IDGI "improves" on a
   metric when the mean paired difference is in the better direction by more than two
   standard errors. The IDGI comparison is repeated with pixels ranked by the magnitude
   (sum over channels of |attribution|), since conventions differ between papers.
2. The same on resnet18 at 224 x 224 with *seeded random weights* (``torch.manual_seed(0)`` and
   torchvision's initialisers; no ImageNet training), on ``--resnet18`` bundled photos with
   the path methods at ``--resnet18-steps`` steps. A random network's "class" is just its
   arg-max, so these figures say how the methods behave on an untrained deep network, not
   which explains ImageNet predictions best. Skipped with ``--resnet18 0`` (and in --quick).
3. FullGrad parity: the map with pytorch-grad-cam's post-processing against pytorch-grad-cam
   1.5.7's ``FullGrad`` on the onnx2torch copy of resnet20_cifar (max |TF - PyTorch|, maps in
   [0, 1]); the default map against a transcription of the authors' post-processing; the
   completeness gap |f(x) - sum of terms| / |f(x)| on resnet20_cifar, keras_cnn and resnet18;
   TF against pytorch-grad-cam's time, interleaved rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)
from benchmarks import time_interleaved, write_results

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("ig", "idgi_ig", "guided_ig", "idgi_guided_ig", "blur_ig", "idgi_blur_ig",
           "saliency", "fullgrad")
PAIRS = (("ig", "idgi_ig"), ("guided_ig", "idgi_guided_ig"), ("blur_ig", "idgi_blur_ig"))


def _mean_se(v) -> tuple[float, float]:
    v = np.asarray(v, np.float64)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)


def correct_cifar(model, n: int):
    """The first ``n`` correctly classified bundled CIFAR-10 test images (normalised), labels,
    and how many images were scanned."""
    import model_zoo
    from tf_impl import images as imgs

    pixels, labels = model_zoo.data.cifar10("test", n=1000, normalize=False)
    x = imgs.normalize(pixels, *imgs.preprocessing_of(model))
    keep, scanned = [], 0
    for i in range(0, len(x), 100):
        pred = np.argmax(np.asarray(model(x[i:i + 100])), axis=1)
        keep += list(np.flatnonzero(pred == labels[i:i + 100]) + i)
        scanned = i + 100
        if len(keep) >= n:
            break
    keep = np.asarray(keep[:n])
    return x[keep], labels[keep].astype(np.int64), scanned


def compare(model, x, targets, *, steps, batch_size, label: str) -> dict:
    """Insertion / deletion of every method on ``x`` (see the module docstring)."""
    from tf_impl.attribution.evaluation import (
        CausalMetricConfig,
        attribute,
        deletion,
        insertion,
    )

    by_abs = CausalMetricConfig(ranking="abs")

    rows = {}
    warm = np.ones(x[:2].shape[:1] + x.shape[2:])
    insertion(model, x[:2], warm, targets[:2], batch_size=64)  # warm-up: trace the model
    for method in METHODS:
        for k in (2, 1):  # warm-up: trace (two batch shapes, then shape-generic functions)
            attribute(method, model, x[:k], targets[:k], steps=steps, batch_size=batch_size)
        t0 = time.perf_counter()
        a = attribute(method, model, x, targets, steps=steps, batch_size=batch_size)
        sec = (time.perf_counter() - t0) / len(x)
        t0 = time.perf_counter()
        ins = insertion(model, x, a, targets, batch_size=64)
        dele = deletion(model, x, a, targets, batch_size=64)
        eval_sec = (time.perf_counter() - t0) / len(x)
        rows[method] = {
            "insertion": _mean_se(ins.auc), "deletion": _mean_se(dele.auc),
            "insertion_per_image": ins.auc.tolist(), "deletion_per_image": dele.auc.tolist(),
            "insertion_curve": ins.probabilities.mean(0).tolist(),
            "deletion_curve": dele.probabilities.mean(0).tolist(),
            "fractions": ins.fractions.tolist(),
            "seconds_per_image": sec, "eval_seconds_per_image": eval_sec,
        }
        if method in {m for pair in PAIRS for m in pair}:  # signed attributions: rank by |a| too
            rows[method]["abs"] = {
                "insertion_per_image": insertion(model, x, a, targets, config=by_abs,
                                                 batch_size=64).auc.tolist(),
                "deletion_per_image": deletion(model, x, a, targets, config=by_abs,
                                               batch_size=64).auc.tolist()}
        print(f"  {label} {method}: insertion {rows[method]['insertion'][0]:.4f}, deletion "
              f"{rows[method]['deletion'][0]:.4f}, {sec:.3f} s/image", flush=True)
    verdicts = {"sum": {}, "abs": {}}
    for ranking, pick in (("sum", lambda r: r), ("abs", lambda r: r["abs"])):
        for base, idgi in PAIRS:
            v = {}
            for metric, sign in (("insertion", 1.0), ("deletion", -1.0)):
                b = np.asarray(pick(rows[base])[f"{metric}_per_image"])
                i = np.asarray(pick(rows[idgi])[f"{metric}_per_image"])
                diff = i - b
                m, se = _mean_se(diff)
                better = sign * m
                v[metric] = {"base": _mean_se(b), "idgi": _mean_se(i),
                             "idgi_minus_base": m, "se": se,
                             "idgi_better_images": int(np.sum(sign * diff > 0)),
                             "verdict": ("improves" if better > 2 * se else "worse"
                                         if better < -2 * se else "no clear difference")}
            verdicts[ranking][base] = v
    p_input = float(ins.probabilities[:, -1].mean())  # the last stage is the input itself
    return {"images": len(x), "steps": steps, "methods": rows, "idgi_vs_base": verdicts,
            "mean_target_probability": p_input}


def parity(n: int, rounds: int, resnet18: bool) -> dict:
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference import fullgrad as ref
    from tf_impl import images as imgs
    from tf_impl.attribution.fullgrad import (
        FullGradConfig,
        fullgrad,
        fullgrad_decompose,
        fullgrad_map,
    )

    path = model_zoo.load("resnet20_cifar")
    model, net = onnx_to_tf.load(path), ref.load_module(path)
    x, _ = model_zoo.data.cifar10("test", n=n)
    d = fullgrad_decompose(model, x, batch_size=n)
    t = d.targets
    cam_cfg = FullGradConfig.pytorch_grad_cam()
    ours = fullgrad_map(d, cam_cfg)
    theirs = ref.fullgrad_grad_cam(net, x, t)
    paper = ref.fullgrad_map_paper(d.input_term, list(d.bias_terms.values()))
    terms = ref.fullgrad_terms_torch(net, x, t)
    paper_e2e = ref.fullgrad_map_paper(terms["input_term"], terms["bias_terms"])
    res = {
        "images": n,
        "grad_cam_max_abs": float(np.max(np.abs(ours - theirs))),
        "paper_post_processing_max_rel": float(np.max(np.abs(fullgrad_map(d) - paper))
                                               / np.max(np.abs(paper))),
        "paper_end_to_end_max_rel": float(np.max(np.abs(fullgrad_map(d) - paper_e2e))
                                          / np.max(np.abs(paper_e2e))),
        "torch_terms_max_rel": max(
            float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
            for a, b in zip([d.input_term, *d.bias_terms.values()],
                            [terms["input_term"], *terms["bias_terms"]])),
        "gaps": {},
    }
    res["gaps"]["resnet20_cifar"] = float(np.max(np.abs(d.gap) / np.abs(d.scores)))
    res["gaps"]["resnet20_cifar (pytorch transcription)"] = float(
        np.max(np.abs(terms["gap"]) / np.abs(terms["scores"])))
    keras = onnx_to_tf.load(model_zoo.load("keras_cnn"))
    kx, _ = model_zoo.data.cifar10("test", n=n, normalize=False)
    kd = fullgrad_decompose(keras, kx, batch_size=n)
    res["gaps"]["keras_cnn"] = float(np.max(np.abs(kd.gap) / np.abs(kd.scores)))
    lenet = onnx_to_tf.load(model_zoo.load("lenet_dlg10"))
    ld = fullgrad_decompose(lenet, kx, batch_size=n)
    res["gaps"]["lenet_dlg10 (sigmoid: not exact)"] = float(
        np.max(np.abs(ld.gap) / np.abs(ld.scores)))
    if resnet18:
        r18 = onnx_to_tf.load(model_zoo.load("resnet18"))
        px = imgs.load_image("astronaut", 224).pixels
        rx = imgs.normalize(px, *imgs.preprocessing_of(r18))
        rd = fullgrad_decompose(r18, rx, batch_size=1)
        res["gaps"]["resnet18 (random weights, 224)"] = float(
            np.max(np.abs(rd.gap) / np.abs(rd.scores)))
    contenders = {
        "tf": lambda: fullgrad(model, x, t, batch_size=n, config=cam_cfg),
        "pytorch_grad_cam": lambda: ref.fullgrad_grad_cam(net, x, t),
    }
    samples = time_interleaved(contenders, rounds)
    ms = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
    res["ms_per_batch"] = ms
    res["ratio_tf_vs_grad_cam"] = ms["tf"] / ms["pytorch_grad_cam"]
    res["torch_threads"] = torch.get_num_threads()
    return res


def markdown(res: dict) -> str:
    from tf_impl.attribution.evaluation import METHOD_TITLES

    quick = " QUICK run (few images, few steps): the figures only check the script." \
        if res["quick"] else ""
    lines = ["# Attribution: insertion / deletion, IDGI, FullGrad", "",
             f"Machine: {res['machine']}; {res['seconds_total'] / 60:.1f} min in all.{quick}",
             ""]
    for key, title in (("resnet20_cifar", "resnet20_cifar (trained), CIFAR-10 test images"),
                       ("resnet18", "resnet18 at 224x224, SEEDED RANDOM WEIGHTS (untrained)")):
        c = res.get(key)
        if c is None:
            if key == "resnet18":
                lines += [f"## {title}", "", res.get("resnet18_note", "skipped"), ""]
            continue
        steps = "each method's default steps" if c["steps"] is None else \
            f"path methods at {c['steps']} steps"
        lines += [f"## {title}", "",
                  f"{c['images']} images ({c.get('note', '')}); {steps}; mean ± standard error."
                  f" Mean probability of the target class on the images themselves: "
                  f"{c['mean_target_probability']:.3f} (the curves' ceiling).",
                  "", "| method | insertion AUC ↑ | deletion AUC ↓ | attribution s/image | "
                  "evaluation s/image |", "|---|---|---|---|---|"]
        for m, r in c["methods"].items():
            lines.append(f"| {METHOD_TITLES[m]} | {r['insertion'][0]:.4f} ± "
                         f"{r['insertion'][1]:.4f} | {r['deletion'][0]:.4f} ± "
                         f"{r['deletion'][1]:.4f} | {r['seconds_per_image']:.3f} | "
                         f"{r['eval_seconds_per_image']:.3f} |")
        for ranking, how in (("sum", "pixels ranked by the attribution summed over channels "
                                     "(signed; the table above)"),
                             ("abs", "pixels ranked by the sum of |attribution| over channels "
                                     "(magnitude)")):
            lines += ["", f"IDGI against its base method, {how}; paired per image (IDGI - "
                      "base; 'improves' = better by more than 2 standard errors):", "",
                      "| base | insertion: base / IDGI | IDGI - base | IDGI better | verdict | "
                      "deletion: base / IDGI | IDGI - base | IDGI better | verdict |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for base, v in c["idgi_vs_base"][ranking].items():
                cells = []
                for metric in ("insertion", "deletion"):
                    e = v[metric]
                    cells.append(f"{e['base'][0]:.4f} / {e['idgi'][0]:.4f} | "
                                 f"{e['idgi_minus_base']:+.4f} ± {e['se']:.4f} | "
                                 f"{e['idgi_better_images']}/{c['images']} | {e['verdict']}")
                lines.append(f"| {METHOD_TITLES[base]} | " + " | ".join(cells) + " |")
        lines.append("")
    p = res["parity"]
    lines += ["## FullGrad parity and completeness", "",
              f"On the first {p['images']} CIFAR-10 test images of resnet20_cifar, each for its "
              "predicted class:", "",
              f"- map with pytorch-grad-cam's post-processing vs pytorch-grad-cam 1.5.7 "
              f"`FullGrad` (onnx2torch model): max abs difference {p['grad_cam_max_abs']:.1e} "
              "(maps in [0, 1]; target 1e-4);",
              f"- default (authors') map vs a transcription of the authors' post-processing on "
              f"the same terms: {p['paper_post_processing_max_rel']:.1e} relative; on the "
              f"PyTorch terms: {p['paper_end_to_end_max_rel']:.1e};",
              f"- raw terms (x * grad and the 20 bias terms) vs the PyTorch transcription: "
              f"{p['torch_terms_max_rel']:.1e} relative (largest over the terms);",
              f"- time per batch of {p['images']}: TF {p['ms_per_batch']['tf']:.0f} ms, "
              f"pytorch-grad-cam {p['ms_per_batch']['pytorch_grad_cam']:.0f} ms (TF / PyTorch "
              f"{p['ratio_tf_vs_grad_cam']:.2f}; PyTorch with {p['torch_threads']} thread, "
              "median of interleaved rounds).", "",
              "Completeness: max over the images of |f(x) - sum(x * grad) - sum of bias terms| "
              "/ |f(x)| (the authors check rel_tol 1e-4):", "",
              "| model | max relative gap |", "|---|---|"]
    for name, g in p["gaps"].items():
        lines.append(f"| {name} | {g:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.attribution", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 images, 8 path steps, no "
                        "resnet18 (checks the script)")
    parser.add_argument("--n", type=int, default=None, help="resnet20_cifar images (default "
                        "200; 8 with --quick)")
    parser.add_argument("--resnet18", type=int, default=None, help="resnet18 photos (default "
                        "2; 0 with --quick; 0 skips)")
    parser.add_argument("--resnet18-steps", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from tf_impl import images as imgs

    torch.set_num_threads(1)  # beside TF's pools on a small machine (see tests/conftest.py)
    n = args.n or (8 if args.quick else 200)
    steps = 8 if args.quick else None
    n18 = args.resnet18 if args.resnet18 is not None else (0 if args.quick else 2)
    t_start = time.perf_counter()
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                      f"{platform.python_version()}", "quick": args.quick}
    print("resnet20_cifar...", flush=True)
    model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))
    x, labels, scanned = correct_cifar(model, n)
    c = compare(model, x, labels, steps=steps, batch_size=32, label="resnet20_cifar")
    c["note"] = f"the first {len(x)} correctly classified of {scanned} scanned"
    res["resnet20_cifar"] = c
    if n18 > 0:
        print("resnet18...", flush=True)
        r18 = onnx_to_tf.load(model_zoo.load("resnet18"))
        photos = model_zoo.data.list_images()[:n18]
        px = np.concatenate([imgs.load_image(p, 224).pixels for p in photos])
        rx = imgs.normalize(px, *imgs.preprocessing_of(r18))
        pred = np.argmax(np.asarray(r18(rx)), axis=1)
        c18 = compare(r18, rx, pred, steps=args.resnet18_steps, batch_size=16, label="resnet18")
        c18["note"] = "bundled photos " + ", ".join(photos) + ", each for the random " \
            "network's arg-max class"
        res["resnet18"] = c18
    else:
        res["resnet18_note"] = "Skipped (--resnet18 0 or --quick); include it with --resnet18 " \
            "N. A one-photo check at 4 path steps took about 8 s of attribution per photo for " \
            "the eight methods on 2 CPU cores; the default 32 steps cost roughly 8x that for " \
            "the path methods. Note that a random network's softmax is near uniform over the " \
            "1000 classes, so its AUCs are all small (0.01-0.03 in that check)."
    print("fullgrad parity...", flush=True)
    res["parity"] = parity(4 if args.quick else 16, 1 if args.quick else 3, n18 > 0)
    res["seconds_total"] = time.perf_counter() - t_start
    write_results(args.out, "attribution", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
