"""Feature-inversion targets: reconstruction quality by depth, and the speed of one step.

    python -m benchmarks.feature_inversion            # full run (~8 minutes on 2 cores)
    python -m benchmarks.feature_inversion --quick    # toy sizes, to check the script

Writes ``benchmarks/results/feature_inversion.json`` and ``feature_inversion.md`` and prints
the tables.

Targets (issue "Feature inversion"):
- quality, pretrained ``vgg16_features``, astronaut at 224x224, default config: PSNR rises as
  the layer gets shallower; conv1_2 reaches PSNR >= 30 dB and LPIPS(vgg) <= 0.1;
- speed: one step (VGG16 up to conv3_1, 224x224, Adam + TV) in TF no slower than the PyTorch
  reference step on the same ONNX model (ratio TF / PyTorch <= 1.0), with GFLOP/s. The two are
  timed in interleaved rounds (a block of TF steps, then a block of PyTorch steps, repeated),
  so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)
from benchmarks import write_results

RESULTS = Path(__file__).resolve().parent / "results"
QUALITY_LAYERS = ("conv1_2", "conv2_2", "conv3_1", "conv4_1", "conv5_1")


def bench_quality(size: int, steps: int | None, layers=QUALITY_LAYERS) -> list[dict]:
    import model_zoo
    from converters import onnx_to_tf
    from tf_impl.feature_inversion import FeatureInversionConfig, invert_features

    model = onnx_to_tf.load(model_zoo.load("vgg16_features"))
    config = FeatureInversionConfig().with_(progress=False)
    if steps is not None:
        config = config.with_(steps=steps)
    rows = []
    for layer in layers:
        r = invert_features(model, "astronaut", [layer], config, size=size)
        rows.append({"layer": layer, **r.metrics, "steps": r.steps,
                     "seconds": round(r.seconds, 2), "final_loss": r.history["loss"][-1]})
        print(f"  {layer}: PSNR {r.metrics['psnr']:.2f} dB, SSIM {r.metrics['ssim']:.3f}, "
              f"LPIPS {r.metrics['lpips_vgg']:.4f}, {r.seconds:.1f} s", flush=True)
    return rows


def conv_macs(model, x, layer: str) -> int:
    """Multiply-accumulates of the convolutions needed for ``layer`` at input ``x``."""
    names = model.dependencies([layer])
    shapes = {k: tuple(v.shape) for k, v in model(x, taps=names).items()}
    macs = 0
    for node in model.nodes:
        if node.op_type == "Conv" and node.outputs[0] in shapes:
            w = model.onnx_variables[node.inputs[1]]  # stored HWIO
            kh, kw, cin, _ = (int(d) for d in w.shape)
            macs += int(np.prod(shapes[node.outputs[0]])) * cin * kh * kw
    return macs


def bench_speed(size: int, layer: str, rounds: int, block: int) -> dict:
    import tensorflow as tf
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference.feature_inversion import TorchTaps, total_variation
    from tf_impl import images as imgs
    from tf_impl.feature_inversion import FeatureInversionConfig, build_objective
    from tf_impl.optimize import Optimization, pixel_box

    path = model_zoo.load("vgg16_features")
    config = FeatureInversionConfig().with_(progress=False)
    model = onnx_to_tf.load(path)
    mean, std = imgs.preprocessing_of(model)
    photo = model_zoo.data.image("astronaut", size=size, normalize=False)
    x0 = imgs.normalize(photo, mean, std)
    start = imgs.normalize(np.full_like(photo, 0.5), mean, std)
    target = model(x0, taps=[layer])[layer].numpy()
    lo, hi = pixel_box(mean, std, channels=3)

    # TF: the shared loop's step (compiled objective, gradient, Adam, box projection)
    objective = build_objective(model, {layer: target}, config)
    tf_opt = Optimization(objective, start, config.optimize, box=(lo, hi))

    # PyTorch: the reference's terms, torch.optim.Adam, the same box; weights frozen
    # channels-last is PyTorch's fastest CPU layout here (about 2-3x faster than NCHW for the
    # backward pass of these convolutions), so the reference gets it
    taps = TorchTaps(path, [layer])
    taps.module = taps.module.to(memory_format=torch.channels_last)
    for p in taps.module.parameters():
        p.requires_grad_(False)
    xt = torch.tensor(start).to(memory_format=torch.channels_last).requires_grad_(True)
    tgt = torch.from_numpy(target)
    norm = float((tgt**2).sum())
    lo_t, hi_t = torch.from_numpy(lo), torch.from_numpy(hi)
    opt_t = torch.optim.Adam([xt], lr=config.optimize.learning_rate)

    def torch_step():
        opt_t.zero_grad()
        feat = taps(xt)[layer]
        loss = ((feat - tgt) ** 2).sum() / norm + config.tv_weight * total_variation(
            xt, config.tv_beta, True)
        loss.backward()
        opt_t.step()
        with torch.no_grad():
            xt.copy_(torch.maximum(torch.minimum(xt, hi_t), lo_t))
        return loss.item()

    contenders = {"TF step": tf_opt.step, "PyTorch step": torch_step}
    for fn in contenders.values():  # warm-up: tracing, allocator
        for _ in range(3):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for key, fn in contenders.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                samples[key].append(time.perf_counter() - t0)
    ms = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
    macs = conv_macs(model, tf.constant(x0), layer)
    flops = 2 * 2 * macs  # forward + input gradient, 2 FLOPs per multiply-accumulate
    return {
        "layer": layer,
        "input": [1, 3, size, size],
        "rounds": rounds,
        "block": block,
        "median_ms": ms,
        "ratio_tf_vs_torch": ms["TF step"] / ms["PyTorch step"],
        "conv_gflop_per_step": flops / 1e9,
        "gflops_tf": flops / ms["TF step"] / 1e6,
        "gflops_torch": flops / ms["PyTorch step"] / 1e6,
        "torch_threads": torch.get_num_threads(),
    }


def markdown(res: dict) -> str:
    lines = ["# Feature inversion benchmark", "", f"Machine: {res['machine']}", "",
             f"## Quality (vgg16_features, ImageNet-pretrained; astronaut {res['size']}x"
             f"{res['size']}; default config: {res['config']})", "",
             "| layer | PSNR (dB) | SSIM | LPIPS (vgg) | steps | seconds |",
             "|---|---|---|---|---|---|"]
    for r in res["quality"]:
        lines.append(f"| {r['layer']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['lpips_vgg']:.4f} "
                     f"| {r['steps']} | {r['seconds']:.1f} |")
    q = {r["layer"]: r for r in res["quality"]}
    psnrs = [r["psnr"] for r in res["quality"]]
    mono = all(a >= b for a, b in zip(psnrs, psnrs[1:]))
    lines += ["", f"PSNR rises as the layer gets shallower: {'yes' if mono else 'NO'}."]
    if "conv1_2" in q:
        c = q["conv1_2"]
        ok = c["psnr"] >= 30 and c["lpips_vgg"] <= 0.1
        lines.append(f"conv1_2: PSNR {c['psnr']:.2f} dB (target >= 30), LPIPS "
                     f"{c['lpips_vgg']:.4f} (target <= 0.1): {'met' if ok else 'NOT met'}.")
    s = res["speed"]
    lines += ["", f"## Speed: one step, VGG16 up to {s['layer']}, input {tuple(s['input'])}, "
              "Adam + TV, median of interleaved blocks", "",
              "| TF step (ms) | PyTorch step (ms) | TF / PyTorch (target <= 1.0) | conv GFLOP per "
              "step | TF GFLOP/s | PyTorch GFLOP/s |", "|---|---|---|---|---|---|",
              f"| {s['median_ms']['TF step']:.1f} | {s['median_ms']['PyTorch step']:.1f} | "
              f"{s['ratio_tf_vs_torch']:.2f} | {s['conv_gflop_per_step']:.1f} | "
              f"{s['gflops_tf']:.0f} | {s['gflops_torch']:.0f} |", "",
              "GFLOP counts the convolutions' forward and input-gradient multiply-adds (x2); the "
              "weights are constants in both frameworks (no weight gradients). PyTorch runs the "
              "onnx2torch module in channels-last memory format, its fastest CPU layout here."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feature_inversion",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="toy sizes (checks the script)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from tf_impl.feature_inversion import FeatureInversionConfig

    size, steps = (48, 5) if args.quick else (224, None)
    print("quality...", flush=True)
    quality = bench_quality(size, steps)
    print("speed...", flush=True)
    speed = bench_speed(64 if args.quick else 224, "conv3_1", rounds=2 if args.quick else 6,
                        block=2 if args.quick else 10)
    cfg = FeatureInversionConfig()
    res = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"{platform.python_version()}",
        "size": size,
        "config": f"Adam lr {cfg.optimize.learning_rate}, {steps or cfg.optimize.steps} steps, "
        f"TV^{cfg.tv_beta:g} weight {cfg.tv_weight} (mean), init {cfg.init}",
        "quality": quality,
        "speed": speed,
    }
    write_results(args.out, "feature_inversion", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
