"""The markdown of ``python -m benchmarks.gradient_inversion``: the DLG table, the
GradInversion ablations with paired differences, the untrained-victim section and the anchor
tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


UNTRAINED_PNG = "gradient_inversion_untrained.png"


def _untrained_section(u: dict) -> list[str]:
    rows, restarts = u["rows"], u.get("restarts", 1)
    lp = float(np.mean([r["lpips"] for r in rows]))
    right = sum(r["label"] == r["restored"] for r in rows)
    per_trial = restarts > 1 and all("trial_lpips" in r for r in rows)
    head = "| image | true label | restored label | PSNR (dB) | SSIM | LPIPS |"
    if per_trial:
        head += " trial kept | LPIPS of each trial's best iterate |"
    lines = [f"## Inverting Gradients on an untrained resnet20_cifar (seeded init, BN eval), "
             f"batch 1, {u['steps']} iterations, TV {u['tv_weight']:g}, {restarts} "
             f"trial{'s' if restarts > 1 else ''}, labels restored", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r['image']} | {r['label']} | {r['restored']} | {r['psnr']:.2f} | "
                f"{r['ssim']:.3f} | {r['lpips']:.3f} |")
        if per_trial:
            line += (f" {r['best_trial'] + 1} | "
                     f"{' / '.join(f'{v:.3f}' for v in r['trial_lpips'])} |")
        lines.append(line)
    if lp >= 0.3:
        verdict = "not met at this budget"
    else:
        verdict = "met" if u["steps"] >= 24_000 else "below 0.3 at this shorter budget"
    trials = ("one trial" if restarts == 1 else
              f"{restarts} trials from different starts, the one with the lowest gradient "
              "distance kept, as in the paper")
    lines += ["", f"Mean over {len(rows)} images: PSNR "
              f"{np.mean([r['psnr'] for r in rows]):.2f} dB, LPIPS {lp:.3f} (target at the "
              f"paper budget, 24,000 iterations: below 0.3 -- {verdict}); labels "
              f"right {right}/{len(rows)}. Settings: "
              f"`InvertingGradientsConfig.paper(tv_weight={u['tv_weight']:g}, "
              f"restarts={restarts})` (signed Adam 0.1, step decay, cosine distance, {trials}); "
              "the best iterate is scored. One 24,000-step trial is about 7.5 minutes on 2 idle "
              "CPU cores (18 ms a step); the JSON's `seconds` counts only the trials run by the "
              "last invocation (resumed ones count 0).", ""]
    if per_trial:
        first = float(np.mean([r["trial_lpips"][0] for r in rows]))
        oracle = sum(r["best_trial"] == int(np.argmin(r["trial_lpips"])) for r in rows)
        lines += [f"With the first trial alone the mean LPIPS is {first:.3f}; picking by gradient "
                  f"distance gives {lp:.3f}, and it picked the trial with the lowest LPIPS on "
                  f"{oracle} of {len(rows)} images.", ""]
    if (RESULTS / UNTRAINED_PNG).is_file():
        lines += [f"![reconstructions]({UNTRAINED_PNG})", ""]
    return lines


def _anchor_sections(folder: Path) -> list[str]:
    """The tables of ``benchmarks/gradient_inversion_anchor.py`` (ours beside breaching: quality
    at each budget that ran, and the loops' speed), read from its result files, one heading
    level down."""
    from benchmarks import gradient_inversion_anchor as anchor

    lines = []
    for path in sorted(folder.glob("gradient_inversion_anchor*.json")):
        if path.stem.endswith("_quick"):
            continue
        run = json.loads(path.read_text())
        md = anchor.speed_markdown(run) if "rows" in run else anchor.markdown(run)
        lines += [f"#{line}" if line.startswith("# ") else line for line in md.splitlines()]
        lines += [f"(From `benchmarks/gradient_inversion_anchor.py`: `{path.name}`.)", ""]
    return lines


def paired_change(before: dict, after: dict, key: str) -> tuple[float, float]:
    """Mean per-image change of ``key`` from one ablation row to the next, and its standard
    error (the same images, so the comparison is paired)."""
    d = np.asarray(after["per_image"][key]) - np.asarray(before["per_image"][key])
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se


def _ablation_section(a: dict) -> list[str]:
    dist = {"l2": "squared-L2 gradient distance (the paper's)",
            "cosine": "cosine gradient distance (Geiping et al.)"}[a["distance"]]
    n_img = a["batch"] * a["n_batches"]
    slack = np.asarray(a.get("one_minus_p_label") or [])
    weights = ("`GradInversionConfig.paper()`'s weights and group schedule"
               if a.get("preset") == "paper" else "the short preset's weights")
    lines = [f"## GradInversion ablation, resnet20_cifar (trained, BN eval), batch {a['batch']} "
             f"x {a['n_batches']} batches ({n_img} CIFAR-10 test images), {dist}, {a['steps']} "
             f"Adam steps, {a['seeds']} seeds, {weights}, true labels", "",
             "Labels restored from the gradient (not used here): "
             + "; ".join(f"{r} for {sorted(t)}" for r, t in zip(a["restored_labels"], a["labels"]))
             + f" ({a['label_accuracy']:.0%})."
             + (f" {int((slack == 0).sum())} of {n_img} images have 1 - p(label) = 0 in float32 "
                "and leave no trace in the gradient." if slack.size else ""), "",
             "| configuration | PSNR (dB) | change (+- s.e.) | SSIM | LPIPS | change (+- s.e.) "
             "| seconds |", "|---|---|---|---|---|---|---|"]
    if a.get("source"):
        lines[2:2] = [f"From the sweep in `{a['source']}` (`python -m tf_impl sweep` of a grid "
                      "like `benchmarks/grids/gradinversion_ablation.yaml`; its `grid.json` "
                      "says which); the best iterate of each job, scored by the command line."
                      + (f" Not finished, left out: {', '.join(a['missing'])}."
                         if a.get("missing") else ""), ""]
    worse, worse_lp, sig, sig_lp = [], [], [], []
    for k, r in enumerate(a["rows"]):
        dp = dl = ""
        if k:
            (mp, sp), (ml, sl) = (paired_change(a["rows"][k - 1], r, key)
                                  for key in ("psnr", "lpips"))
            dp, dl = f"{mp:+.2f} +- {sp:.2f}", f"{ml:+.3f} +- {sl:.3f}"
            worse += [r["config"]] if mp < 0 else []
            worse_lp += [r["config"]] if ml > 0 else []
            sig += [r["config"]] if mp < -2 * sp else []
            sig_lp += [r["config"]] if ml > 2 * sl else []
        lines.append(f"| {r['config']} | {r['psnr']:.2f} | {dp} | {r['ssim']:.3f} | "
                     f"{r['lpips']:.3f} | {dl} | {r['seconds']:.0f} |")

    def said(names, what):
        return "yes" if not names else f"no, it {what} at: {', '.join(names)}"

    lines += ["", "Change: the mean over the images of each image's change from the row above "
              "(paired), with its standard error. Each added term keeps or raises the mean "
              f"PSNR: {said(worse, 'drops')}; keeps or lowers the mean LPIPS: "
              f"{said(worse_lp, 'rises')}. Drops in PSNR larger than two standard errors: "
              f"{', '.join(sig) or 'none'}; rises in LPIPS larger than two standard errors: "
              f"{', '.join(sig_lp) or 'none'}.", ""]
    return lines


def markdown(res: dict) -> str:
    d = res["dlg"]
    lines = ["# Gradient inversion benchmark", "", f"Machine: {res['machine']}", "",
             f"## DLG on lenet_dlg (100 classes, sigmoid, U(-0.5, 0.5)), batch 1, {d['steps']} "
             "L-BFGS steps (lr 1, max_iter 20), soft labels", "",
             "| image | true label | recovered label | PSNR (dB) | seconds |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['image']} | {r['label']} | {r['restored']} | {r['psnr']:.2f} | "
              f"{r['seconds']:.0f} |" for r in d["rows"]]
    ok = d["median_psnr"] >= 30
    lines += ["", f"Median PSNR {d['median_psnr']:.2f} dB over {len(d['rows'])} images (target "
              f">= 30: {'met' if ok else 'NOT met'}); labels recovered "
              f"{d['label_accuracy']:.0%}.", ""]
    for a in [*res["ablation"], *res.get("ablation_paper", [])]:
        if a:
            lines += _ablation_section(a)
    if res.get("untrained"):
        lines += _untrained_section(res["untrained"])
    sweep = res.get("bn_sweep")
    if sweep:
        lines += [f"## BN-prior weight, resnet20_cifar, batch {sweep['batch']} x "
                  f"{sweep.get('n_batches', 1)} batches, cosine distance, "
                  f"{sweep['steps']} Adam steps, {sweep['seeds']} seeds, no group term", "",
                  "The paper's weight 0.1 was set beside its squared-L2 distance on ImageNet; "
                  "with the cosine distance (at most 2) the BN prior's share of the loss is "
                  "much larger. The sweep shows the trade-off:", "",
                  "| configuration | PSNR (dB) | SSIM | LPIPS | seconds |", "|---|---|---|---|---|"]
        lines += [f"| {r['config']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['lpips']:.3f} | "
                  f"{r['seconds']:.0f} |" for r in sweep["rows"]]
        lines += [""]
    lines += ["Images are matched to the originals by LPIPS (Hungarian) before scoring; the "
              "reported image is the seed with the lowest final gradient distance. Langevin "
              "noise (alpha_n 0.2) is on in every row; the weights are the paper's (TV 1e-4, L2 "
              "1e-6, BN 0.1, group 0.01), the run far shorter than the paper's 20k iterations.",
              "",
              "The victim is trained and confident: images with 1 - p(label) = 0 in float32 "
              "contribute exactly nothing to the shared gradient, so no attack can recover them "
              "from it. With the squared-L2 distance the gradients are tiny (a confident batch) "
              "and any confidently classified dummy matches them about as well, so the "
              "distance gives almost no direction and no prior changes the outcome. The "
              "scale-free cosine distance does respond to the priors; there the BN prior "
              "trades pixel accuracy (PSNR) for natural image statistics (LPIPS).", ""]
    lines += _anchor_sections(RESULTS)
    return "\n".join(lines).rstrip("\n") + "\n"


def ablation_from_sweep(folder) -> list[dict]:
    """The ablation tables of a sweep of ``benchmarks/grids/gradinversion_ablation.yaml``
    (``python -m tf_impl sweep ... --out FOLDER``): one table per batch size (and distance),
    its rows in the grid's order of ``terms``, each row's per-image scores over the batches
    (``first``) that every row finished, so that rows are compared image by image; a batch
    with an unfinished job is left out of its table and named in ``missing``."""
    from tf_impl.sweep import job_result, stored_grid

    folder = Path(folder)
    grid = stored_grid(folder)
    if grid is None:
        raise SystemExit(f"{folder} is not a sweep folder (no readable grid.json)")
    options = grid.options
    terms = [b.get("name", json.dumps(b, sort_keys=True)) for b in grid.grid["terms"]]
    cells: dict = {}
    for p in grid.points:
        distance = p.argv[p.argv.index("--distance") + 1] if "--distance" in p.argv else "l2"
        key = (int(p.values.get("batch", options.get("batch", 4))), distance)
        cells.setdefault(key, {})[(p.values["terms"], p.values.get("first", 0))] = \
            job_result(folder, p)
    out = []
    for (batch, distance), jobs in sorted(cells.items()):
        firsts = sorted({f for _, f in jobs})
        complete = [f for f in firsts if all(jobs.get((t, f)) for t in terms)]
        rows = []
        for term in terms:
            done = [jobs[(term, f)] for f in complete]
            per_image = {k: [v for j in done for v in j["metrics"][k]]
                         for k in ("psnr", "ssim", "lpips")}
            rows.append({"config": term, "per_image": per_image,
                         **{k: float(np.mean(v)) if v else float("nan")
                            for k, v in per_image.items()},
                         "seconds": sum(j["seconds"] for j in done)})
        first_jobs = [jobs[(terms[0], f)] for f in complete]
        labels = [j["true_labels"] for j in first_jobs]
        restored = [j["restored_labels"] for j in first_jobs]
        accuracy = [np.mean(np.sort(a) == np.sort(b)) for a, b in zip(labels, restored,
                                                                       strict=True)]
        out.append({"batch": batch, "n_batches": len(complete), "distance": distance,
                    "steps": options.get("steps", 20_000 if options.get("preset") == "paper"
                                         else None),
                    "seeds": options.get("seeds", 8), "preset": options.get("preset", "quick"),
                    "labels": labels, "restored_labels": restored,
                    "label_accuracy": float(np.mean(accuracy)) if accuracy else float("nan"),
                    "rows": rows, "source": str(folder),
                    "missing": [f"the batch from image {f}" for f in firsts
                                if f not in complete]})
    return out
