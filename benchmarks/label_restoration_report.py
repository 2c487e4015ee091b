"""The markdown of ``python -m benchmarks.label_restoration``: accuracy per method, label
kind and batch size, and the issue's targets checked."""

from __future__ import annotations

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)

METHODS = {"idlg": "iDLG", "column_min": "column-wise min", "duplicates": "duplicate-aware",
           "breaching:bias-corrected": "breaching bias-corrected",
           "breaching:wainakh-simple": "breaching wainakh-simple",
           "breaching:wainakh-whitebox": "breaching wainakh-whitebox",
           "breaching:analytic": "breaching analytic"}


KINDS = {
    "unique": "unique labels",
    "repeated": "repeated labels (i.i.d. uniform, >= 1 repeat)",
    "heavy": "heavy repeats (i.i.d. from B/4 classes)",
}


def _cell(c: dict | None) -> str:
    return "—" if c is None else f"{c['accuracy']:.1f} / {c['full']:.0f}"


def markdown_table(setting: dict) -> str:
    bs = setting["batches"]
    lines = ["| method | labels | " + " | ".join(f"B={b}" for b in bs) + " |",
             "|---|---|" + "---|" * len(bs)]
    for method, label in METHODS.items():
        for kind in setting["kinds"]:
            row = setting["cells"].get(method, {}).get(kind)
            if not row:
                continue
            lines.append(f"| {label} | {kind} | "
                         + " | ".join(_cell(row.get(str(b))) for b in bs) + " |")
    k = setting["num_classes"]
    lines.append("| chance (B random distinct labels) | unique | "
                 + " | ".join(f"{100 * b / k:.1f}" if b <= k else "—" for b in bs) + " |")
    return "\n".join(lines)


def _get(setting, method, kind, b):
    return setting["cells"].get(method, {}).get(kind, {}).get(str(b))


def targets(settings: list[dict]) -> list[dict]:
    out = []
    for s in settings:
        c = _get(s, "idlg", "unique", 1)
        if c:
            out.append({"setting": s["name"], "target": "iDLG = 100 % at B=1",
                        "value": c["accuracy"], "pass": c["accuracy"] == 100.0})
        c = _get(s, "column_min", "unique", 8)
        if c and s["num_classes"] >= 1000:  # the paper's regime (ImageNet, 1,000 classes)
            out.append({"setting": s["name"], "target": "column-wise min >= 99 % at B=8 (unique)",
                        "value": c["accuracy"], "pass": c["accuracy"] >= 99.0})
        elif c:  # 10 classes: 8 distinct guesses already score 80 %
            chance = 100 * 8 / s["num_classes"]
            out.append({"setting": s["name"],
                        "target": f"column-wise min above chance ({chance:.0f} %) at B=8 "
                                  "(unique)", "value": c["accuracy"],
                        "pass": c["accuracy"] > chance})
    return out


def _traced_note(result: dict) -> str:
    """Column-wise min on the resnet20 batches in which no sample has p(label) == 1.0."""
    s = next((s for s in result["settings"] if s["name"] == "resnet20_cifar, BN eval"), None)
    cells = [(b, _get(s, "column_min", "unique", b)) for b in s["batches"]] if s else []
    cells = [(b, c) for b, c in cells if c and c.get("traced_trials")]
    if not cells:
        return ""
    return (" Restricted to the batches in which every image leaves a trace (no p_label == "
            "1.0), column-wise min with unique labels recovers " + ", ".join(
                f"{c['traced_accuracy']:.1f} % at B={b} ({c['traced_trials']} of "
                f"{c['trials']} batches)" for b, c in cells) + ". So exact zeros are not the "
            "only loss: an image whose 1 - p_label is smaller than the softmax mass the other "
            "images of the batch put on its class can leave a non-negative row, like an absent "
            "class. The rule needs small per-class leaks from the other samples, which is the "
            "1,000-class regime the paper measured.")


def render_markdown(result: dict) -> str:
    n = result["notes"]
    r20, r18 = n.get("resnet20_cifar"), n.get("resnet18")
    parts = [
        "# Label restoration from the FC gradient",
        "",
        "`python -m benchmarks.label_restoration"
        + (" --quick" if result["meta"]["quick"] else "")
        + f"` ({result['meta']['trials']} random batches per cell, seed "
        f"{result['meta']['seed']}, {result['meta']['seconds'] / 60:.1f} min). Each cell: "
        "label accuracy (% of the true labels recovered, multiset match) / % of batches "
        "recovered completely. iDLG: Zhao et al. 2020; column-wise min: Yin et al. 2021 "
        "(GradInversion); duplicate-aware: bias-gradient counting after LLG (Wainakh et al. "
        "2022) and iLRG (Ma et al. 2023); *breaching* rows: `breaching==0.1.2`'s own label "
        "strategies (`converters.torch_reference.breaching_anchor.restore_labels`) on the same "
        "gradients (wainakh-whitebox, which runs the onnx2torch model on 2 x classes dummy "
        "batches, with 10 classes only; it does not run in breaching 0.1.2, so it is "
        "transcribed with two lines mended, see the adapter). "
        "Label kinds: " + "; ".join(
            f"*{k}* = {v}" for k, v in KINDS.items()) + ".",
        "",
        "## Targets",
        "",
        "| setting | target | value | pass |",
        "|---|---|---|---|",
    ]
    for t in result["targets"]:
        parts.append(f"| {t['setting']} | {t['target']} | {t['value']:.2f} % | "
                     f"{'yes' if t['pass'] else '**no**'} |")
    for s in result["settings"]:
        parts += ["", f"## {s['name']}", "",
                  f"{s['num_classes']} classes; gradients: {s['gradients']}; "
                  f"{s['trials']} batches per cell; {s['seconds']:.0f} s.", "",
                  markdown_table(s)]
    checks = "; ".join(
        f"{m} B={c['batch']}: max abs. err {c['max_abs_err']:.1e} (max |grad| "
        f"{c['max_abs_grad']:.1e}), same labels {c['same_labels']}"
        for m, cs in result["checks"].items() for c in cs)
    parts += [
        "",
        "## Notes",
        "",
        f"- Pool gradients vs `client_gradient` (FC weight and bias): {checks}. The "
        "pool's softmax is the client's (`exp(log_softmax)`, which `cross_entropy` "
        "differentiates), so the differences are float32 round-off of the mean reduction; a "
        "confident batch has a tiny gradient, so they can look large relative to it.",
        "- The duplicate-aware rule shares the batch among the present classes in proportion "
        "to each class's bias-gradient deficit, so it is exact when every sample has a similar "
        "impact 1 - p_label (untrained models) and blurs when impacts differ by orders of "
        "magnitude (trained models). The column-wise min can return each class once only, so "
        "on batches with repeats its accuracy is capped at (distinct labels) / B.",
        "",
    ]
    # the settings' own notes (a sweep may hold only some of them), before the last one
    parts[-2:-2] = _model_notes(result, r20, r18)
    return "\n".join(parts)


def _model_notes(result: dict, r20: dict | None, r18: dict | None) -> list[str]:
    notes = []
    if r20 is not None:
        notes.append(
            f"- resnet20_cifar is trained and confident: test accuracy "
            f"{100 * r20['test_accuracy']:.1f} %, median 1 - p_label "
            f"{r20['median_1_minus_p_label']:.1e}, "
            f"and {100 * r20['saturated_fraction']:.0f} % of the test images have p_label == 1.0 "
            "in float32 (BN eval). Such a sample's p - y is exactly zero: it leaves no trace in "
            "the FC gradient, and a batch rule can only guess its label. With 10 classes a "
            "misclassified sample also pours its softmax mass into another class of the batch "
            "and hides it. iDLG is unaffected (the label's row is zero, the others positive). "
            "In BN train mode (a local training step) the batch statistics make the outputs far "
            "less confident and the rules recover much more. Read the unique-label cells "
            "against the chance row: 8 distinct guesses among 10 classes already score 80 %."
            + _traced_note(result))
    if r18 is not None:
        notes.append(
            f"- resnet18 has seeded random weights: the softmax is nearly uniform (median max "
            f"probability {r18['median_max_softmax']:.4f}), every sample leaves a clear trace and "
            "1,000 classes dilute the leak (the regime of a model early in training; the paper's "
            "99.56 % is on a trained ResNet-50, also with 1,000 classes). Its ONNX input is fixed "
            "at "
            f"{tuple(r18['input_shape'])}, so 224x224 was kept; the pool gradients make batch 32 "
            f"cheap ({r18['pool_images']} images, forward once in {r18['pool_forward_s']:.0f} s).")
    return notes
