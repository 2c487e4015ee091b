"""GradInversion: the speed of one optimisation step, TF against the PyTorch reference.

    python -m benchmarks.gradient_inversion_speed            # full run (1-3 minutes on 2 cores)
    python -m benchmarks.gradient_inversion_speed --quick    # 2 rounds of 2 steps (checks it)

Writes ``benchmarks/results/gradient_inversion_speed.json`` and ``.md`` (``_quick`` with
``--quick``) and prints the table.

One step of GradInversion on resnet20_cifar (ImageNet-normalised CIFAR-10 test images, batch
8, one seed, the default weights: gradient distance + TV + L2 + BN prior; the group term needs
two seeds or more and is off in both): the forward pass with the BN inputs tapped, the weight
gradient with its graph kept, the L2 distance to the shared gradient, the gradient of the whole
objective with respect to the images (a double backward), an Adam step with the scheduled
learning rate, the pixel box, the Langevin update and the box again.

- TF: ``tf_impl.optimize.Optimization.step`` on ``GradInversionObjective`` (the compiled
  step of the shared loop; its first call traces the double backward, ~20 s), then the
  Langevin update exactly as ``grad_inversion``'s ``after_step`` does it.
- PyTorch: ``converters.torch_reference.gradient_inversion.GradInversionTorch.step`` on the
  onnx2torch module (``torch.autograd.grad(create_graph=True)``, ``torch.optim.Adam``), in
  the default (NCHW) memory format and in channels-last, each with one intra-op thread and
  with PyTorch's default thread count; the fastest of the four is the reference.

Contenders run in interleaved rounds (a block of steps of each, repeated) after a warm-up, so
machine noise hits them alike; the table gives the median milliseconds per step.
Target: TF / PyTorch <= 1.0.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)
from benchmarks import (
    contender_rows,
    contender_summary,
    runtime_info,
    time_interleaved,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "resnet20_cifar"


def bench(batch: int, rounds: int, block: int, warmup: int) -> dict:
    import tensorflow as tf
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference.gradient_inversion import GradInversionTorch
    from tf_impl import images as imgs
    from tf_impl.gradient_inversion import client_gradient
    from tf_impl.gradient_inversion.gradinversion import (
        GradInversionConfig,
        GradInversionObjective,
        langevin_noise,
    )
    from tf_impl.gradient_inversion.registration import consensus
    from tf_impl.optimize import Optimization, learning_rate_at, pixel_box, seeded_noise

    path = model_zoo.load(MODEL)
    model = onnx_to_tf.load(path)
    x, y = model_zoo.data.cifar10("test", n=batch)
    shared = client_gradient(model, x, y)
    # long schedule: the steps timed sit in the warm-up / early cosine part, as in a real run
    config = GradInversionConfig(seeds=1).with_(progress=False)
    shape = tuple(x.shape[1:])
    mean, std = imgs.preprocessing_of(model)
    start = seeded_noise((batch, *shape), config.seed, config.init_std)

    # TF: the shared loop's compiled step on GradInversion's objective, then after_step's
    # Langevin update
    objective = GradInversionObjective(model, shared, y, config, batch, shape)
    lo, hi = pixel_box(mean, std, channels=shape[0])
    opt = Optimization(objective, start, config.optimize, box=(lo, hi))
    lo_t, hi_t = tf.constant(lo), tf.constant(hi)

    def tf_step():
        opt.step()
        k = opt.steps_done - 1
        noise = langevin_noise(config, (batch, *shape), k)
        var = opt.variables["x"]
        var.assign_add(learning_rate_at(config.optimize, k) * config.langevin * noise)
        var.assign(tf.clip_by_value(var, lo_t, hi_t))

    # PyTorch: both memory formats, with one intra-op thread and with all of them (on a
    # shared 2-core machine OpenMP's barriers can cost more than the second core gives)
    all_threads = torch.get_num_threads()
    contenders = {"TF": tf_step}
    for threads in dict.fromkeys((1, all_threads)):
        for fmt, memory_format in (("NCHW", None), ("channels_last", torch.channels_last)):
            run = GradInversionTorch(path, shared, y, config, start, register=consensus,
                                     memory_format=memory_format)

            def torch_step(run=run, threads=threads):
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                run.step()

            contenders[f"PyTorch {fmt}, {threads} thread{'s' * (threads > 1)}"] = torch_step
    t0 = time.perf_counter()
    tf_step()
    first_tf = time.perf_counter() - t0
    samples = time_interleaved(contenders, rounds, block=block, warmup=warmup)
    return {
        "model": MODEL,
        "input": [batch, *shape],
        "seeds": 1,
        "terms": sorted(opt.history),
        "rounds": rounds,
        "block": block,
        "warmup_steps": warmup,
        "first_tf_step_s": first_tf,
        **contender_summary(samples),
        **runtime_info(all_threads),
    }


def markdown(res: dict) -> str:
    lines = [
        "# GradInversion step speed", "",
        f"Machine: {res['machine']}; TF {res['tf_version']} (intra/inter-op threads "
        f"{res['tf_threads'][0]}/{res['tf_threads'][1]}, 0 = TF's default), PyTorch "
        f"{res['torch_version']} ({res['torch_threads']} threads by default)", "",
        f"One step on {res['model']}, input {tuple(res['input'])}, one seed, terms "
        f"{', '.join(t for t in res['terms'] if t not in ('loss', 'lr'))} (double backward), "
        "Adam, pixel box, Langevin update. Median of "
        f"{res['rounds']} interleaved rounds x {res['block']} steps after "
        f"{res['warmup_steps']} warm-up steps (TF's first step, with tracing: "
        f"{res['first_tf_step_s']:.1f} s).", "",
    ]
    lines += contender_rows(res)
    lines[-1] += (f"; TF / fastest PyTorch channels_last: "
                  f"{res['ratio_tf_vs_torch_channels_last']:.2f}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradient_inversion_speed",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 steps")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        res = bench(args.batch, rounds=2, block=2, warmup=2)
    else:
        res = bench(args.batch, rounds=6, block=5, warmup=3)
    load = os.getloadavg()[0]  # other jobs on the machine widen the spread
    res["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores (load average "
                      f"{load:.1f} at the end), Python {platform.python_version()}")
    write_results(args.out, "gradient_inversion_speed", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
