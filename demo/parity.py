"""One zoo model in three runtimes on a real input: the crosscheck report, TF vs onnxruntime
top-1, the TF and PyTorch input gradients side by side, and the model's row of the table."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (imported before torch / TensorFlow: blocks triton, see converters/triton_guard.py)
from converters import crosscheck as cc

CIFAR_INDEX = 0  # bundled CIFAR-10 test image #0 (a cat)
PHOTO = "visualization/cat_dog"
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


