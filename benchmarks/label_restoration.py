"""Label restoration accuracy by batch size: iDLG, GradInversion's column-wise minimum and the
duplicate-aware rule (tf_impl/gradient_inversion/labels.py).

    python -m benchmarks.label_restoration               # full run (~5-10 minutes on 2 cores)
    python -m benchmarks.label_restoration --quick       # a smoke run: 20 trials, small pools
    python -m benchmarks.label_restoration --trials 500  # more random batches per cell
    python -m tf_impl sweep benchmarks/grids/label_restoration.yaml --out runs/labels
    python -m benchmarks.label_restoration --from-sweep runs/labels   # its tables

As a sweep, each setting is one job (``--setting NAME --out FOLDER`` writes the folder's
``result.json``: the setting's cells, checks and notes, and each method's mean accuracy as the
table's metrics); ``--from-sweep`` assembles the same JSON and markdown as the full run.

Writes ``benchmarks/results/label_restoration.json`` and ``.md`` and prints the tables.

Settings (each cell: ``--trials`` random batches, seeded):
- resnet20_cifar (trained, 10 classes, 32x32) on the 1,000 bundled CIFAR-10 test images with
  their true labels; BatchNorm in eval mode (the client default) and in train mode (batch
  statistics, as in a local training step).
- resnet18 (seeded random weights, 1,000 classes) on the same images upsampled to 224x224
  (bilinear), with random labels.
- "unique": B distinct labels; "repeated": labels drawn i.i.d. uniformly, conditioned on at
  least one repeat; "heavy" (resnet18): labels drawn i.i.d. from B/4 random classes.

How the gradients are computed: in BatchNorm eval mode the samples of a batch do not interact,
so the FC gradient of a batch is exactly ``(P - Y)^T H / B`` from each image's FC input ``H``
and softmax ``P``. The eval-mode settings run the model once over the image pool (forward
only) and form each batch's FC weight and bias gradient from that; a few batches are checked
against :func:`client_gradient` (``checks`` in the JSON: same gradient to float32 round-off
and the same restored labels). Train mode couples the samples through the batch statistics,
so that setting calls :func:`client_gradient` once per batch.

Targets: iDLG 100 % at batch 1; column-wise min >= 99 % at batch 8 with unique labels (the
paper: 99.56 % on ImageNet, ResNet-50, Yin et al. 2021).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)

from .label_restoration_report import render_markdown, targets

RESULTS = Path(__file__).resolve().parent / "results"
BREACHING = ("bias-corrected", "wainakh-simple", "wainakh-whitebox", "analytic")


def _features(model, x: np.ndarray, size: int | None, chunk: int = 50):
    """FC input H and softmax P (float32) of every image, in chunks (upsampled to ``size``).

    P is ``exp(log_softmax)``, the softmax inside the client's gradient (``cross_entropy``
    differentiates ``log_softmax``): it is exactly 1.0 where the client's p - y is exactly zero.
    ``tf.nn.softmax`` rounds otherwise and almost never returns 1.0, which would leave a trace
    in the pool's gradient that the client's gradient does not have."""
    import tensorflow as tf

    from tf_impl.gradient_inversion import fc_layer

    fc = fc_layer(model)
    tap = next(n for n in model.nodes if n.name == fc.node).inputs[0]
    out_name = model.output_names[0]
    hs, ps = [], []
    for i in range(0, len(x), chunk):
        xb = tf.constant(x[i : i + chunk] if size is None else _upsample(x[i : i + chunk], size))
        out = model(xb, taps=[tap, out_name])
        hs.append(tf.reshape(out[tap], (xb.shape[0], -1)).numpy())
        ps.append(tf.exp(tf.nn.log_softmax(out[out_name])).numpy())
    return np.concatenate(hs).astype(np.float32), np.concatenate(ps).astype(np.float32)


def _upsample(x: np.ndarray, size: int) -> np.ndarray:
    """NCHW images resized bilinearly to ``size`` x ``size``."""
    import tensorflow as tf

    return tf.transpose(tf.image.resize(tf.transpose(x, (0, 2, 3, 1)), (size, size)),
                        (0, 3, 1, 2)).numpy()


def _pool_gradient(fc, h, p, labels):
    """The client's mean-reduced FC gradient of the batch, in ONNX layout."""
    from tf_impl.gradient_inversion import SharedGradient

    b = len(labels)
    d = p.copy()
    d[np.arange(b), labels] -= 1.0
    gw = d.T @ h / np.float32(b)  # (classes, features)
    grads = {fc.weight: gw if fc.out_axis == 0 else gw.T}
    if fc.bias is not None:
        grads[fc.bias] = d.mean(axis=0)
    return SharedGradient(grads, "mean", b)


def _draw_labels(rng, kind: str, b: int, k: int) -> np.ndarray | None:
    if kind == "unique":
        return rng.choice(k, b, replace=False) if b <= k else None
    if b == 1:
        return None
    if kind == "heavy":
        classes = rng.choice(k, max(1, b // 4), replace=False)
        return rng.choice(classes, b)
    while True:  # repeated: i.i.d. uniform, conditioned on a repeat
        y = rng.integers(0, k, b)
        if len(set(y.tolist())) < b:
            return y


def _restore(fc, shared, method, module=None, image_shape=None):
    from tf_impl.gradient_inversion.labels import restore_labels

    if method.startswith("breaching:"):
        from converters.torch_reference import breaching_anchor

        w = np.asarray(shared.grads[fc.weight])
        w = w if fc.out_axis == 0 else w.T  # breaching reads (classes, features)
        return breaching_anchor.restore_labels(method.split(":", 1)[1], w,
                                               shared.grads[fc.bias], shared.batch_size,
                                               module=module, image_shape=image_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return restore_labels(fc, shared, method=method)


def _methods(b: int, kind: str, n_cls: int, breaching: bool = False) -> list[str]:
    out = ["idlg"] if b == 1 else []
    if kind != "heavy" and b <= n_cls:
        out.append("column_min")
    out.append("duplicates")
    if breaching:
        # the white-box estimate runs the model on 2 x classes dummy batches: 10-class only
        out += [f"breaching:{m}" for m in BREACHING
                if m != "wainakh-whitebox" or n_cls <= 100]
    return out


def run_setting(name: str, *, model, batches, kinds, trials: int, seed: int, pool=None,
                images=None, class_index=None, bn_mode: str = "eval", module=None,
                image_shape=None) -> dict:
    """Accuracy and full-recovery rate per (method, kind, batch size).

    ``pool``: (H, P) of the images (eval mode: gradients from the pool); else ``images``
    and client_gradient per batch. ``class_index``: images of each class (true labels),
    or None for random labels on random images. ``module``: the onnx2torch victim in the
    client's BN mode, for breaching's strategies (they run when it is given).
    """
    from tf_impl.gradient_inversion import client_gradient, fc_layer
    from tf_impl.gradient_inversion.labels import label_accuracy

    fc = fc_layer(model)
    n_cls = fc.num_classes
    n_img = len(pool[0]) if pool is not None else len(images)
    rng = np.random.default_rng(seed)
    cells: dict = {}
    t0 = time.perf_counter()
    for b in batches:
        for kind in kinds:
            accs: dict[str, list[float]] = {}
            traced: dict[str, list[float]] = {}  # batches in which every sample leaves a trace
            for _ in range(trials):
                y = _draw_labels(rng, kind, b, n_cls)
                if y is None:
                    break
                if class_index is None:
                    idx = rng.choice(n_img, b, replace=False)
                else:
                    idx = np.empty(b, np.int64)
                    for c in np.unique(y):
                        where = np.flatnonzero(y == c)
                        idx[where] = rng.choice(class_index[c], len(where), replace=False)
                if pool is not None:
                    shared = _pool_gradient(fc, pool[0][idx], pool[1][idx], y)
                else:
                    shared = client_gradient(model, images[idx], y, bn_mode=bn_mode)
                # p(label) == 1.0 in float32 makes the sample's p - y exactly zero
                every_traced = pool is not None and bool(np.all(pool[1][idx, y] < 1.0))
                for method in _methods(b, kind, n_cls, breaching=module is not None):
                    acc = label_accuracy(y, _restore(fc, shared, method, module, image_shape))
                    accs.setdefault(method, []).append(acc)
                    if every_traced:
                        traced.setdefault(method, []).append(acc)
            for method, a in accs.items():
                a = np.asarray(a)
                cell = cells.setdefault(method, {}).setdefault(kind, {})[str(b)] = {
                    "accuracy": float(100 * a.mean()),
                    "full": float(100 * np.mean(a == 1.0)),
                    "trials": int(len(a)),
                }
                if pool is not None:
                    t = np.asarray(traced.get(method, []))
                    cell["traced_trials"] = int(len(t))
                    cell["traced_accuracy"] = float(100 * t.mean()) if len(t) else None
    return {"name": name, "num_classes": n_cls, "batches": list(batches), "kinds": list(kinds),
            "bn_mode": bn_mode, "gradients": "pool" if pool is not None else "client_gradient",
            "trials": trials, "seconds": time.perf_counter() - t0, "cells": cells}


def check_pool(model, pool, images, labels_list, idx_list) -> list[dict]:
    """The pool's FC gradient vs client_gradient on a few batches (and the labels restored)."""
    from tf_impl.gradient_inversion import client_gradient, fc_layer

    fc = fc_layer(model)
    out = []
    for idx, y in zip(idx_list, labels_list):
        ref = client_gradient(model, images[idx], y)
        got = _pool_gradient(fc, pool[0][idx], pool[1][idx], y)
        err = max(float(np.abs(got.grads[k] - ref.grads[k]).max()) for k in got.grads)
        scale = max(float(np.abs(ref.grads[k]).max()) for k in got.grads)
        same = all(np.array_equal(_restore(model, ref, m), _restore(fc, got, m))
                   for m in ("column_min", "duplicates"))
        out.append({"batch": len(idx), "max_abs_err": err, "max_abs_grad": scale,
                    "same_labels": bool(same)})
    return out


SETTINGS = ("resnet20_eval", "resnet20_train", "resnet18")


def _resnet20_setting(mode: str, args, trials, x, y, checks, notes) -> dict:
    """The trained resnet20_cifar with true labels, BN in ``mode`` ("eval": gradients from the
    image pool, checked against client_gradient; "train": client_gradient per batch)."""
    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference.breaching_anchor import breaching_module

    r20_path = model_zoo.load("resnet20_cifar")
    r20 = onnx_to_tf.load(r20_path)
    by_class = [np.flatnonzero(y == c) for c in range(10)]
    module = breaching_module(r20_path)
    if mode == "train":
        return run_setting("resnet20_cifar, BN train", model=r20, batches=(1, 2, 4, 8, 16),
                           kinds=("unique", "repeated"),
                           trials=max(10, trials // 2) if args.quick else trials,
                           seed=args.seed + 1, images=x, class_index=by_class,
                           bn_mode="train", module=module.train(), image_shape=(3, 32, 32))
    pool = _features(r20, x, None)
    p_label = pool[1][np.arange(len(y)), y]
    notes["resnet20_cifar"] = {
        "test_accuracy": float(np.mean(pool[1].argmax(1) == y)),
        "saturated_fraction": float(np.mean(p_label == 1.0)),
        "median_1_minus_p_label": float(np.median(1.0 - p_label)),
    }
    rng = np.random.default_rng(args.seed + 99)
    idx_list = [rng.choice(1000, b, replace=False) for b in (1, 4, 8)]
    checks["resnet20_cifar"] = check_pool(r20, pool, x, [y[i] for i in idx_list], idx_list)
    return run_setting("resnet20_cifar, BN eval", model=r20, batches=(1, 2, 4, 8, 16),
                       kinds=("unique", "repeated"), trials=trials, seed=args.seed, pool=pool,
                       class_index=by_class, module=module.eval(), image_shape=(3, 32, 32))


def _resnet18_setting(args, trials, x, checks, notes) -> dict:
    """resnet18 with random weights and random labels, CIFAR test images upsampled to 224."""
    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference.breaching_anchor import breaching_module

    r18_path = model_zoo.load("resnet18")
    r18 = onnx_to_tf.load(r18_path)
    shape = tuple(model_zoo.info("resnet18").input_shape)
    size = 224
    n_pool = 200 if args.quick else 1000
    t0 = time.perf_counter()
    pool18 = _features(r18, x[:n_pool], size)
    pool_s = time.perf_counter() - t0
    notes["resnet18"] = {"input_shape": list(shape), "size": size, "pool_images": n_pool,
                         "pool_forward_s": pool_s,
                         "median_max_softmax": float(np.median(pool18[1].max(1)))}
    rng = np.random.default_rng(args.seed + 98)
    idx_list = [rng.choice(n_pool, 4, replace=False)]
    x_check = np.concatenate([_upsample(x[i][None], size) for i in idx_list[0]])
    checks["resnet18"] = check_pool(r18, (pool18[0][idx_list[0]], pool18[1][idx_list[0]]),
                                    x_check, [rng.choice(1000, 4, replace=False)],
                                    [np.arange(4)])
    return run_setting("resnet18 (random weights), 224x224, BN eval", model=r18,
                       batches=(1, 2, 4, 8, 16, 32), kinds=("unique", "repeated", "heavy"),
                       trials=trials, seed=args.seed + 2, pool=pool18,
                       module=breaching_module(r18_path).eval())


def run_one(name: str, args, trials: int, x, y, checks: dict, notes: dict) -> dict:
    """One setting of :data:`SETTINGS` (its checks and notes added to ``checks``/``notes``)."""
    t0 = time.perf_counter()
    if name == "resnet18":
        setting = _resnet18_setting(args, trials, x, checks, notes)
    else:
        setting = _resnet20_setting(name.split("_")[1], args, trials, x, y, checks, notes)
    print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return setting


def summary_metrics(setting: dict) -> dict:
    """A setting's headline for a sweep's table: each method's accuracy (%), the mean over its
    (label kind, batch size) cells."""
    return {method: float(np.mean([c["accuracy"] for kinds in cells.values()
                                   for c in kinds.values()]))
            for method, cells in setting["cells"].items()}


def from_sweep(folder: Path) -> dict:
    """The full result (``settings``, ``checks``, ``notes``) assembled from a sweep of
    ``benchmarks/grids/label_restoration.yaml``: one finished job per setting."""
    from tf_impl.sweep import job_result, stored_grid

    grid = stored_grid(folder)
    if grid is None:
        raise SystemExit(f"{folder} is not a sweep folder (no readable grid.json); run python "
                         "-m tf_impl sweep benchmarks/grids/label_restoration.yaml --out FOLDER")
    settings, checks, notes, meta, seconds = [], {}, {}, {}, 0.0
    for point in grid.points:
        job = job_result(folder, point)
        if job is None:
            raise SystemExit(f"{folder}: the job {point.values} has not finished; rerun the "
                             "sweep to finish it")
        settings.append(job["setting"])
        checks.update(job["checks"])
        notes.update(job["notes"])
        meta, seconds = job["meta"], seconds + job["meta"]["seconds"]
    meta["seconds"] = seconds
    order = {n: i for i, n in enumerate(SETTINGS)}
    settings.sort(key=lambda s: order.get(_setting_key(s), 99))
    return {"meta": {**meta, "from_sweep": str(folder)}, "notes": notes, "checks": checks,
            "settings": settings, "targets": targets(settings)}


def _setting_key(setting: dict) -> str:
    if setting["name"].startswith("resnet18"):
        return "resnet18"
    return f"resnet20_{setting['bn_mode']}"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.label_restoration",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 trials, small image pools")
    ap.add_argument("--trials", type=int, default=200, help="random batches per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--setting", choices=SETTINGS,
                    help="run one setting and write OUT/result.json (a sweep's job: "
                    "benchmarks/grids/label_restoration.yaml)")
    ap.add_argument("--from-sweep", type=Path, metavar="FOLDER",
                    help="write the tables from a finished sweep of "
                    "benchmarks/grids/label_restoration.yaml instead of running")
    ap.add_argument("--out", type=Path, default=RESULTS)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 1:
        raise SystemExit(f"--trials must be >= 1; got {args.trials}")
    trials = 20 if args.quick else args.trials
    meta = {"python": sys.version.split()[0], "platform": platform.platform(), "trials": trials,
            "quick": args.quick, "seed": args.seed}
    if args.from_sweep:
        return _write(from_sweep(args.from_sweep), args.out)

    import tensorflow as tf

    import model_zoo

    tf.get_logger().setLevel("ERROR")  # retracing notes: train mode sees 5 batch sizes

    t_start = time.perf_counter()
    x, y = model_zoo.data.cifar10("test")
    checks, notes = {}, {}
    names = (args.setting,) if args.setting else SETTINGS
    settings = [run_one(name, args, trials, x, y, checks, notes) for name in names]
    meta["seconds"] = time.perf_counter() - t_start
    if args.setting:  # a sweep's job: its folder's result.json
        args.out.mkdir(parents=True, exist_ok=True)
        job = {"metrics": summary_metrics(settings[0]), "setting": settings[0],
               "checks": checks, "notes": notes, "meta": meta}
        (args.out / "result.json").write_text(json.dumps(job, indent=1) + "\n")
        return 0
    return _write({"meta": meta, "notes": notes, "checks": checks, "settings": settings,
                   "targets": targets(settings)}, args.out)


def _write(result: dict, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "label_restoration.json").write_text(json.dumps(result, indent=1) + "\n")
    md = render_markdown(result)
    (out / "label_restoration.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
