"""Neural style transfer: the speed of one step, TF against the PyTorch reference, and a run.

    python -m benchmarks.style_transfer_speed            # full (a few minutes on 2 cores)
    python -m benchmarks.style_transfer_speed --quick    # 2 rounds of 2 steps at 128, 5-step run

Writes ``benchmarks/results/style_transfer_speed.json`` and ``.md`` (``_quick`` with
``--quick``), prints the table and, for the full run, a picture
``benchmarks/results/style_transfer_256.png`` (content | style | result).

One step of Gatys et al.'s style transfer on vgg16_features at 256x256 with the default config
(content relu4_2, style relu1_1..relu5_1, TV): the forward pass with all six taps, the Gram
matrices, the loss, the gradient with respect to the image, the Adam update and the pixel box.

- TF: ``tf_impl.optimize.Optimization.step`` on the objective ``style_transfer`` builds (the
  compiled step of the shared loop: one ``tf.function`` call per step).
- PyTorch: ``converters.torch_reference.style.GatysTorch.step`` on the onnx2torch module
  (``torch.optim.Adam``, ``torch.clamp``), in the default (NCHW) memory format and in
  channels-last, each with one intra-op thread and with PyTorch's default thread count (all
  cores); the fastest of the four is the reference. TensorFlow keeps its default thread pools.

Contenders run in interleaved rounds (a block of steps of each, repeated) after a warm-up, so
machine noise hits them alike; the table gives the median milliseconds per step.
Target: TF / PyTorch <= 1.0. The full run then makes a whole style transfer (default config,
``--run-steps`` steps, 200 by default) and times it.
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
from benchmarks import (
    contender_rows,
    contender_summary,
    runtime_info,
    time_interleaved,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "vgg16_features"


def bench(size: int, rounds: int, block: int, warmup: int) -> dict:
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference.style import GatysTorch
    from model_zoo.data import image
    from tf_impl import images as imgs
    from tf_impl.optimize import Optimization, pixel_box
    from tf_impl.visualization.perceptual import gram_matrix
    from tf_impl.visualization.style import StyleTransferConfig, build_objective

    path = model_zoo.load(MODEL)
    model = onnx_to_tf.load(path)
    content = image("tubingen", size, normalize=False)
    style = image("starry_night", size, normalize=False)
    config = StyleTransferConfig().with_(progress=False, steps=10_000)
    mean, std = imgs.preprocessing_of(model)
    # the targets and the objective exactly as style_transfer() builds them
    fs = model(imgs.normalize(style, mean, std), taps=list(config.style_layers))
    fc = model(imgs.normalize(content, mean, std), taps=list(config.content_layers))
    objective = build_objective(
        model, {k: gram_matrix(fs[k]).numpy() for k in config.style_layers}, config.weights(),
        config.style_weight, contents={k: np.asarray(v) for k, v in fc.items()},
        content_weight=config.content_weight, tv_weight=config.tv_weight,
        tv_beta=config.tv_beta)
    opt = Optimization(objective, imgs.normalize(content, mean, std), config.optimize,
                       box=pixel_box(mean, std, channels=3))

    all_threads = torch.get_num_threads()
    contenders = {"TF": opt.step}
    for threads in dict.fromkeys((1, all_threads)):
        for fmt, memory_format in (("NCHW", None), ("channels_last", torch.channels_last)):
            run = GatysTorch(path, style, config, content_pixels=content,
                             memory_format=memory_format)

            def torch_step(run=run, threads=threads):
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                run.step()

            contenders[f"PyTorch {fmt}, {threads} thread{'s' * (threads > 1)}"] = torch_step
    t0 = time.perf_counter()
    opt.step()
    first_tf = time.perf_counter() - t0
    samples = time_interleaved(contenders, rounds, block=block, warmup=warmup)
    torch.set_num_threads(all_threads)
    return {
        "model": MODEL,
        "input": [1, 3, size, size],
        "terms": sorted(k for k in opt.history if k not in ("loss", "lr")),
        "rounds": rounds,
        "block": block,
        "warmup_steps": warmup,
        "first_tf_step_s": first_tf,
        **contender_summary(samples),
        **runtime_info(all_threads),
    }


def full_run(size: int, steps: int, out: Path | None) -> dict:
    import model_zoo
    from converters import onnx_to_tf
    from tf_impl.visualization.style import (
        StyleTransferConfig,
        draw_style_transfer,
        style_transfer,
    )

    model = onnx_to_tf.load(model_zoo.load(MODEL))
    config = StyleTransferConfig().with_(steps=steps, progress=False)
    t0 = time.perf_counter()
    r = style_transfer(model, "tubingen", "starry_night", config, size=size)
    total = time.perf_counter() - t0
    res = {
        "size": size,
        "steps": r.steps,
        "seconds_total": total,
        "seconds_loop": r.seconds,
        "ms_per_step": r.seconds / max(r.steps, 1) * 1e3,
        "metrics": r.metrics,
        "loss_first_last": [r.history["loss"][0], r.history["loss"][-1]] if r.history else [],
    }
    if out is not None:
        from PIL import Image

        from model_zoo.data import image

        path = out / f"style_transfer_{size}.png"
        style = image("starry_night", size, normalize=False)
        draw_style_transfer(path, r.original, style, r.image,
                            title=f"vgg16_features, {steps} Adam steps at {size}x{size}")
        with Image.open(path) as im:  # 256 colours: a third of the size, for the repository
            small = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
        res["picture"] = path.name
    return res


def markdown(res: dict) -> str:
    lines = [
        "# Style transfer step speed", "",
        f"Machine: {res['machine']}; TF {res['tf_version']} (intra/inter-op threads "
        f"{res['tf_threads'][0]}/{res['tf_threads'][1]}, 0 = TF's default), PyTorch "
        f"{res['torch_version']} ({res['torch_threads']} threads by default)", "",
        f"One step on {res['model']}, input {tuple(res['input'])}, terms "
        f"{', '.join(res['terms'])}: forward with all taps, Gram matrices, loss, input "
        "gradient, Adam, pixel box. Median of "
        f"{res['rounds']} interleaved rounds x {res['block']} steps after "
        f"{res['warmup_steps']} warm-up steps (TF's first step, with tracing: "
        f"{res['first_tf_step_s']:.1f} s).", "",
    ]
    lines += contender_rows(res)
    lines[-1] += "."
    run = res.get("run")
    if run:
        m = run["metrics"]
        lines += ["", "## A whole run", "",
                  f"style_transfer(vgg16_features, tubingen, starry_night), default config, "
                  f"{run['steps']} Adam steps at {run['size']}x{run['size']}: "
                  f"{run['seconds_total']:.1f} s in all ({run['ms_per_step']:.0f} ms per step "
                  f"in the loop). Style loss (sum_l w_l S_l) {m['style_loss_start']:.3g} -> "
                  f"{m['style_loss']:.3g}; content loss {m['content_loss_start']:.3g} -> "
                  f"{m['content_loss']:.3g}."]
        if run.get("picture"):
            lines += ["", f"![content, style, result]({run['picture']})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.style_transfer_speed",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 steps at 128x128 "
                        "and a 5-step run without picture")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--run-steps", type=int, default=200, help="steps of the whole run "
                        "(0: skip it)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        res = bench(128, rounds=2, block=2, warmup=2)
        res["run"] = full_run(128, 5, None)
    else:
        res = bench(args.size, rounds=4, block=3, warmup=2)
        if args.run_steps:
            args.out.mkdir(parents=True, exist_ok=True)
            res["run"] = full_run(args.size, args.run_steps, args.out)
    load = os.getloadavg()[0]  # other jobs on the machine widen the spread
    res["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores (load average "
                      f"{load:.1f} at the end), Python {platform.python_version()}")
    write_results(args.out, "style_transfer_speed", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
