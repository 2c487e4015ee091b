"""HDR-GAN's objectives: a small end-to-end merge, the loss's numerics, TF vs PyTorch speed.

    python -m benchmarks.hdr_gan            # full run (~1.5 minutes on 2 cores)
    python -m benchmarks.hdr_gan --quick    # toy sizes, to check the script

Writes ``benchmarks/results/hdr_gan.json``, ``hdr_gan.md`` and the figure ``hdr_gan.png``
(``*_quick.*`` with --quick) and prints the table.

- quality: :class:`tf_impl.hdr_gan.TinyMergeNet` learns to merge three synthetic exposures
  (x1, x4, x16 of H = photo^2.2, clipped, gamma 1/2.2, 8-bit) of the training photos, with the
  tonemapped L1 alone and with L1 + lambda_adv x the hypersphere generator loss (PatchGAN
  trained alternately); the tonemapped PSNR (PSNR-mu) of held-out photos before and after,
  for several seeds (the same seed gives both runs the same initial weights and crops).
- numerics: the north-pole distance and its gradient at extreme norms, the overflow-safe TF
  form against the textbook arccos form evaluated in float32 and float64 (PyTorch).
- speed: one discriminator update's forward and backward (PatchGAN + hypersphere loss, weight
  and input gradients) in TF (compiled) and in the PyTorch reference, interleaved.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)
from benchmarks import time_interleaved, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def bench_quality(steps: int, seeds, out: Path, figure_name: str, small: bool) -> dict:
    from tf_impl.hdr_gan import HDRGANConfig, draw_hdr_gan, train_hdr_gan

    base = HDRGANConfig()
    if small:
        base = HDRGANConfig(train_photos=("astronaut", "coffee"), held_out=("rocket",),
                            image_size=48, eval_size=32)
    runs = []
    first = {}
    for seed in seeds:
        for name, lam in (("L1", 0.0), ("L1 + adv", base.lambda_adv)):
            cfg = base.with_(seed=seed, lambda_adv=lam, steps=steps, progress=False)
            r = train_hdr_gan(cfg)
            runs.append({"run": name, "seed": seed, **{k: round(v, 4) for k, v in
                                                       r.metrics.items()},
                         "steps": r.steps, "seconds": round(r.seconds, 1),
                         "final_l1": r.history["l1"][-1]})
            print(f"  seed {seed}, {name}: PSNR-mu {r.metrics['psnr_mu_before']:.2f} -> "
                  f"{r.metrics['psnr_mu_after']:.2f} dB, {r.seconds:.1f} s", flush=True)
            if seed == seeds[0]:
                first[name] = r
    out.mkdir(parents=True, exist_ok=True)
    draw_hdr_gan(out / figure_name, first, title=f"HDR merge after {steps} steps (seed "
                 f"{seeds[0]}), mu-law tonemapped; PSNR-mu per image")
    summary = {}
    for name in ("L1", "L1 + adv"):
        after = [r["psnr_mu_after"] for r in runs if r["run"] == name]
        summary[name] = {"psnr_mu_after_mean": float(np.mean(after)),
                         "psnr_mu_after_std": float(np.std(after)),
                         "psnr_mu_before_mean": float(np.mean(
                             [r["psnr_mu_before"] for r in runs if r["run"] == name]))}
    cfg = base
    return {"runs": runs, "summary": summary, "figure": figure_name, "steps": steps,
            "config": {"exposures": cfg.exposures, "lambda_adv": cfg.lambda_adv,
                       "moments": cfg.moments, "lr_g": cfg.optimize.learning_rate,
                       "lr_d": cfg.d_learning_rate, "batch": cfg.batch_size, "crop": cfg.crop,
                       "d_width": cfg.d_width, "generator_width": cfg.generator_width,
                       "train_photos": list(cfg.train_photos),
                       "held_out": list(cfg.held_out), "eval_size": cfg.eval_size}}


def bench_numerics() -> list[dict]:
    import tensorflow as tf
    import torch

    from converters.torch_reference import hdr_gan as ref
    from tf_impl.hdr_gan import north_pole_distance

    direction = np.array([0.48, -0.6, 0.64])
    rows = []
    for norm in (0.0, 1e-8, 1.0, 1e4, 1e20):
        u = (norm * direction)[None]
        v = tf.Variable(u.astype(np.float32))
        with tf.GradientTape() as tape:
            d = north_pole_distance(v)
        g = tape.gradient(d, v).numpy()
        row = {"norm": norm, "tf_d": float(d.numpy()[0]),
               "tf_grad_norm": float(np.linalg.norm(g)),
               "exact_d": 2 * float(np.arctan2(1.0, norm)),
               "exact_grad_norm": 2 / (1 + norm ** 2) if norm else 0.0}
        for dtype, tag in ((torch.float32, "32"), (torch.float64, "64")):
            t = torch.tensor(u, dtype=dtype, requires_grad=True)
            dd = ref.north_pole_distance_arccos(t)
            dd.sum().backward()
            row[f"arccos{tag}_d"] = float(dd.detach()[0])
            row[f"arccos{tag}_grad_norm"] = float(torch.linalg.vector_norm(t.grad))
        rows.append(row)
    return rows


def bench_speed(batch: int, size: int, width: float, rounds: int, block: int) -> dict:
    import tensorflow as tf
    import torch

    from converters.torch_reference import hdr_gan as ref
    from tf_impl.hdr_gan import PatchDiscriminator, hypersphere_discriminator_loss

    disc = PatchDiscriminator(width=width, seed=0)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    fake = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    real_tf, fake_tf = tf.Variable(real), tf.Variable(fake)
    tf_vars = [*disc.trainable_variables, fake_tf]

    @tf.function
    def tf_step():
        with tf.GradientTape() as tape:
            loss = hypersphere_discriminator_loss(disc(real_tf), disc(fake_tf), 3)
        return loss, tape.gradient(loss, tf_vars)

    # one PyTorch thread: two spin against TensorFlow's thread pools on a 2-core machine
    # (10x slower here, see tests/conftest.py's one_torch_thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    weights = ref.torch_weights(disc.weights(), requires_grad=True)
    real_t = torch.from_numpy(real)
    fake_t = torch.tensor(fake, requires_grad=True)

    def torch_step():
        for w in [*weights.values(), fake_t]:
            w.grad = None
        loss = ref.hypersphere_discriminator_loss(
            ref.patch_discriminator(real_t, weights, "OIHW"),
            ref.patch_discriminator(fake_t, weights, "OIHW"), 3)
        loss.backward()
        return loss

    lt, gt = tf_step()
    lp = torch_step()
    grad_tf, grad_pt = gt[-1].numpy(), fake_t.grad.numpy()
    agree = float(np.max(np.abs(grad_tf - grad_pt)) / np.max(np.abs(grad_pt)))
    samples = time_interleaved({"TF": lambda: tf_step()[0].numpy(), "PyTorch": torch_step},
                               rounds, block=block, warmup=3)
    torch.set_num_threads(threads)
    ms = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
    return {"input": [batch, 3, size, size], "widths": list(disc.widths), "median_ms": ms,
            "ratio_tf_vs_torch": ms["TF"] / ms["PyTorch"], "input_grad_rel_diff": agree,
            "loss": [float(lt), float(lp.detach())], "rounds": rounds, "block": block,
            "torch_threads": 1}


def markdown(res: dict) -> str:
    q = res["quality"]
    c = q["config"]
    lines = ["# HDR-GAN objectives benchmark", "", f"Machine: {res['machine']}", "",
             f"## Merge of three synthetic exposures ({q['steps']} steps, TinyMergeNet "
             f"{c['generator_width']} ch; PatchGAN widths x{c['d_width']}; batch {c['batch']} "
             f"crops of {c['crop']}; Adam lr G {c['lr_g']}, D {c['lr_d']}; lambda_adv "
             f"{c['lambda_adv']}, R = {c['moments']})", "",
             f"Exposure times {tuple(c['exposures'])}, H = photo^2.2, LDR = 8-bit "
             f"clip(t H)^(1/2.2). Trained on {', '.join(c['train_photos'])}; PSNR-mu on the "
             f"held-out {', '.join(c['held_out'])} at {c['eval_size']}x{c['eval_size']}.", "",
             "| run | seed | PSNR-mu before (dB) | PSNR-mu after (dB) | L1-mu after | seconds |",
             "|---|---|---|---|---|---|"]
    for r in q["runs"]:
        lines.append(f"| {r['run']} | {r['seed']} | {r['psnr_mu_before']:.2f} | "
                     f"{r['psnr_mu_after']:.2f} | {r['l1_mu_after']:.4f} | {r['seconds']:.1f} |")
    lines += ["", "| run | mean PSNR-mu after (dB) | std |", "|---|---|---|"]
    for name, s in q["summary"].items():
        lines.append(f"| {name} | {s['psnr_mu_after_mean']:.2f} | {s['psnr_mu_after_std']:.2f} |")
    lines += ["", f"Figure: `{q['figure']}` (exposures | L1 | L1 + adv | ground truth, "
              "tonemapped).", "",
              "## North-pole distance at extreme norms (value; gradient norm)", "",
              "| norm | TF float32 (stable) | exact | arccos form, float32 | arccos form, "
              "float64 |", "|---|---|---|---|---|"]
    for r in res["numerics"]:
        lines.append(
            f"| {r['norm']:g} | {r['tf_d']:.6g}; {r['tf_grad_norm']:.3g} | {r['exact_d']:.6g}; "
            f"{r['exact_grad_norm']:.3g} | {r['arccos32_d']:.6g}; {r['arccos32_grad_norm']:.3g}"
            f" | {r['arccos64_d']:.6g}; {r['arccos64_grad_norm']:.3g} |")
    s = res["speed"]
    lines += ["", f"## Speed: discriminator loss forward + backward (weights and input), input "
              f"{tuple(s['input'])}, widths {tuple(s['widths'])}; median of interleaved blocks",
              "", "| TF (ms) | PyTorch (ms, 1 thread) | TF / PyTorch | input gradient, max rel. "
              "diff |", "|---|---|---|---|",
              f"| {s['median_ms']['TF']:.2f} | {s['median_ms']['PyTorch']:.2f} | "
              f"{s['ratio_tf_vs_torch']:.2f} | {s['input_grad_rel_diff']:.1e} |", "",
              "TF runs compiled (tf.function) on its own thread pools; PyTorch eagerly, on one "
              "thread (two spin against TensorFlow's pools on this 2-core machine)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hdr_gan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="toy sizes (checks the script)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    steps, seeds = (10, (0,)) if args.quick else (300, (0, 1, 2))
    figure = "hdr_gan_quick.png" if args.quick else "hdr_gan.png"
    print("quality...", flush=True)
    quality = bench_quality(steps, seeds, args.out, figure, small=args.quick)
    print("numerics...", flush=True)
    numerics = bench_numerics()
    print("speed...", flush=True)
    speed = bench_speed(4, 64, 0.25, rounds=2 if args.quick else 8,
                        block=2 if args.quick else 10)
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                      f"{platform.python_version()}",
           "quality": quality, "numerics": numerics, "speed": speed}
    write_results(args.out, "hdr_gan", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
