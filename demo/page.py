"""The demo's outputs: ``index.html`` (self-contained: figures embedded), ``parity.json`` and
``parity.md``."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import converters  # noqa: F401  (imported before torch / TensorFlow: blocks triton, see converters/triton_guard.py)
from converters import crosscheck as cc

from .parity import table_rows, top1_text
from .techniques import ATTR_TEXT, FI_TEXT, GI_TEXT, VIS_TEXT

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


def _img(out: Path, path: str, alt: str) -> str:
    """An <img> with the PNG at ``out / path`` embedded, so the page stands alone."""
    data = base64.b64encode((out / path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def visualization_html(out: Path, tech: dict) -> str:
    esc = html.escape
    heading, text = {"visualization": ("Visualization gallery", VIS_TEXT),
                     "attribution": ("Attribution and HDR-GAN", ATTR_TEXT)}[tech["technique"]]
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td{'' if e['exit_code'] == 0 else ' class=bad'}>"
        f"{'ok' if e['exit_code'] == 0 else 'failed (exit ' + str(e['exit_code']) + ')'}</td>"
        f"<td>{e['seconds']:.1f}</td><td><code>{esc(e['command'])}</code></td></tr>"
        for name, e in tech["runs"].items())
    imgs = "".join(_img(out, p, p) for p in tech["images"])
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
    imgs = "".join(_img(out, p, p) for p in tech["images"])
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
    imgs = "".join(_img(out, p, p) for p in tech["images"])
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
        f'<figure>{_img(out, r["image"], r["model"])}'
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


