"""Adversarial-example targets: flip rate of the iterative attack, FGSM for comparison, TF
beside the PyTorch reference.

    python -m benchmarks.adversarial            # full run (100 images)
    python -m benchmarks.adversarial --quick    # 10 images, one round: checks the script

Writes ``benchmarks/results/adversarial.json`` and ``adversarial.md`` and prints the table.

Targets (issue "Class visualization, adversarial examples, DeepDream"):
- untargeted PGD (L-inf 8/255, step 2/255, 10 steps, from the image) on ``resnet20_cifar``
  over the first 100 bundled CIFAR-10 test images it classifies correctly: flip rate >= 95 %,
  with the perturbation's mean L-inf and L2 (pixel space) and the time;
- FGSM (one step of 8/255) on the same images, and PGD with Madry et al.'s random start;
- the same attacks with the PyTorch reference (``converters/torch_reference/ascent.py``) on the
  onnx2torch copy of the same ONNX file: flip rates side by side, how many images the two
  judge alike, and the largest pixel difference between the two adversarial batches.

Timings are medians over interleaved rounds (TF, then PyTorch, repeated), one batch of all the
images per call, PyTorch on one thread by default (``--torch-threads``). TF runs each attack
through the shared loop; a new attack traces its step anew, so the compiled figure includes
tracing, and the eager one is given beside it.
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
from benchmarks import write_results

RESULTS = Path(__file__).resolve().parent / "results"
EPS, STEP, STEPS = 8 / 255, 2 / 255, 10


def correctly_classified(model, n: int, pool: int = 1000):
    """The first ``n`` bundled CIFAR-10 test images the model gets right, and their labels."""
    from model_zoo import data
    from tf_impl import images as imgs

    x, y = data.cifar10("test", n=pool, normalize=False)
    mean, std = imgs.preprocessing_of(model)
    pred = np.concatenate([model(imgs.normalize(x[i:i + 200], mean, std)).numpy().argmax(1)
                           for i in range(0, len(x), 200)])
    keep = np.flatnonzero(pred == y)[:n]
    return x[keep], y[keep], float((pred == y).mean())


def summarise(x, adv_images, fooled, seconds) -> dict:
    from tf_impl.visualization.adversarial import perturbation_norms

    linf, l2 = perturbation_norms(x, adv_images)
    return {"flip_rate": float(np.mean(fooled)), "linf_mean": float(linf.mean()),
            "linf_max": float(linf.max()), "l2_mean": float(l2.mean()),
            "seconds_median": float(np.median(seconds)), "seconds": [round(s, 3) for s in seconds]}


def run(n: int, rounds: int, torch_threads: int) -> dict:
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference import ascent as ref
    from tf_impl.visualization.adversarial import AdversarialConfig, fgsm, pgd

    torch.set_num_threads(torch_threads)
    path = model_zoo.load("resnet20_cifar")
    model = onnx_to_tf.load(path)
    net = ref.TorchClassifier(path)
    x, y, accuracy = correctly_classified(model, n)
    print(f"{len(x)} correctly classified images (accuracy on 1000: {accuracy:.1%})", flush=True)

    def torch_fooled(a):
        with torch.no_grad():
            return net.logits_of_pixels(torch.from_numpy(a)).argmax(1).numpy() != y

    base = AdversarialConfig().with_(progress=False)
    contenders = {
        "TF PGD (compiled)": lambda: pgd(model, x, y, base),
        "TF PGD (eager)": lambda: pgd(model, x, y, base.with_(compile=False)),
        "PyTorch PGD": lambda: ref.pgd(net, x, y, eps=EPS, step_size=STEP, steps=STEPS),
        "TF PGD random start": lambda: pgd(model, x, y, base.with_(random_start=True)),
        "PyTorch PGD random start": lambda: ref.pgd(net, x, y, eps=EPS, step_size=STEP,
                                                    steps=STEPS, random_start=True),
        "TF FGSM": lambda: fgsm(model, x, y, base),
        "PyTorch FGSM": lambda: ref.fgsm(net, x, y, EPS)[0],
    }
    outputs: dict[str, object] = {}
    seconds: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(rounds):
        for key, fn in contenders.items():
            t0 = time.perf_counter()
            outputs[key] = fn()
            seconds[key].append(time.perf_counter() - t0)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{k} {v[-1]:.2f} s" for k, v in seconds.items()), flush=True)
    rows, images = {}, {}
    for key, out in outputs.items():
        if key.startswith("TF"):
            adv_images, fooled = out.image, np.asarray(out.extra["success"])
        else:
            adv_images, fooled = out, torch_fooled(out)
        images[key] = adv_images
        rows[key] = summarise(x, adv_images, fooled, seconds[key])
        rows[key]["fooled"] = fooled.tolist()
    pairs = {"PGD": ("TF PGD (compiled)", "PyTorch PGD"),
             "PGD random start": ("TF PGD random start", "PyTorch PGD random start"),
             "FGSM": ("TF FGSM", "PyTorch FGSM")}
    agreement = {}
    for name, (a, b) in pairs.items():
        same = np.asarray(rows[a]["fooled"]) == np.asarray(rows[b]["fooled"])
        agreement[name] = {
            "same_outcome": float(same.mean()),
            "max_pixel_difference": float(np.abs(images[a] - images[b]).max()),
            "pixels_differing": float((np.abs(images[a] - images[b]) > 1e-6).mean()),
            "flip_rate_ratio_tf_vs_torch": rows[a]["flip_rate"] / max(rows[b]["flip_rate"], 1e-12),
            "time_ratio_tf_vs_torch": rows[a]["seconds_median"] / rows[b]["seconds_median"],
        }
    return {"images": len(x), "clean_accuracy_1000": accuracy, "rows": rows,
            "agreement": agreement, "torch_threads": torch.get_num_threads()}


def markdown(res: dict) -> str:
    lines = ["# Adversarial examples benchmark", "", f"Machine: {res['machine']}", "",
             f"resnet20_cifar (ImageNet-style normalisation inside the attack), the first "
             f"{res['images']} bundled CIFAR-10 test images it classifies correctly (clean "
             f"accuracy on the 1,000 bundled: {res['clean_accuracy_1000']:.1%}). L-inf budget "
             f"8/255 in pixel space; PGD: step 2/255, {STEPS} steps; FGSM: one step of 8/255. "
             f"Median of {res['rounds']} interleaved rounds, one batch of all images per call; "
             f"PyTorch threads: {res['torch_threads']}.", "",
             "| attack | flip rate | mean L-inf (x255) | max L-inf (x255) | mean L2 | seconds |",
             "|---|---|---|---|---|---|"]
    for key, r in res["rows"].items():
        lines.append(f"| {key} | {r['flip_rate']:.1%} | {r['linf_mean'] * 255:.3f} | "
                     f"{r['linf_max'] * 255:.3f} | {r['l2_mean']:.3f} | "
                     f"{r['seconds_median']:.2f} |")
    pgd_rate = res["rows"]["TF PGD (compiled)"]["flip_rate"]
    lines += ["", f"Target: PGD flip rate >= 95 %: {pgd_rate:.1%}, "
              f"{'met' if pgd_rate >= 0.95 else 'NOT met'}.", "",
              "## TF against the PyTorch reference", "",
              "| attack | same outcome (images) | pixels differing (> 1e-6) | max pixel difference "
              "| flip rate TF / PyTorch | time TF / PyTorch |", "|---|---|---|---|---|---|"]
    for name, a in res["agreement"].items():
        lines.append(f"| {name} | {a['same_outcome']:.1%} | {a['pixels_differing']:.2e} | "
                     f"{a['max_pixel_difference']:.2e} | {a['flip_rate_ratio_tf_vs_torch']:.3f} | "
                     f"{a['time_ratio_tf_vs_torch']:.2f} |")
    lines += ["", "The TF time of a compiled attack includes tracing its step (each attack is "
              "a new run of the shared loop; the model's own graph is traced once, in the first "
              "round); the eager row runs the same steps without tracing.", "",
              "FGSM agrees to float32 rounding. The iterative attacks part on a few pixels: "
              "after a few steps some iterates sit at ReLU kinks, where TF's and PyTorch's "
              "float32 pre-activations can fall on opposite sides; the gradients then differ by "
              "~1 % and the signs of small entries flip, and the trajectories part from there. "
              "The outcome per image is what the comparison holds to."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adversarial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 images, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch threads (default "
                        "1: on a small machine PyTorch's OpenMP threads and TensorFlow's pools "
                        "spin against each other; measured 15-30x slower PGD with 2 threads on "
                        "2 busy cores)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n, rounds = (10, 1) if args.quick else (100, args.rounds)
    res = run(n, rounds, args.torch_threads)
    res.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                           f"{platform.python_version()}", "rounds": rounds,
                "config": {"eps": EPS, "step": STEP, "steps": STEPS}})
    write_results(args.out, "adversarial", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
