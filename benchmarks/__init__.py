"""Benchmarks: quality and speed measurements kept out of the timed test suite.

Each script writes its figures under ``benchmarks/results/`` and prints a table.
"""


def write_results(out, stem: str, quick: bool, results: dict, markdown: str, *,
                  echo: bool = True) -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` (``<stem>_quick.*`` for --quick) and print the md.

    Every benchmark ends this way, so the figures quoted in notes live in the repository.
    """
    import json
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{stem}_quick" if quick else stem
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(markdown)
    if echo:
        print(markdown)


def time_interleaved(contenders: dict, rounds: int, *, block: int = 1,
                     warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contender, timed side by side.

    After ``warmup`` untimed calls each (tracing, allocators, oneDNN primitives), every round
    runs each contender ``block`` times in turn, so a noisy neighbour slows all of them alike
    and their ratio stays meaningful. Returns ``{name: [seconds, ...]}``.
    """
    import time

    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return samples


def contender_rows(res: dict) -> list[str]:
    """The markdown rows of a TF-vs-PyTorch step benchmark: each contender's median and
    p10-p90 milliseconds (``res["median_ms"]``, ``res["p10_p90_ms"]``), the reference marked,
    then the TF/PyTorch ratio against the 1.0 target."""
    ms, pct, ref = res["median_ms"], res["p10_p90_ms"], res["reference"]
    lines = ["| contender | median ms | p10 - p90 ms |", "|---|---|---|"]
    for k, v in ms.items():
        mark = " (reference)" if k == ref else ""
        lines.append(f"| {k}{mark} | {v:.1f} | {pct[k][0]:.1f} - {pct[k][1]:.1f} |")
    ok = res["ratio_tf_vs_torch"] <= 1.0
    lines += ["", f"TF / PyTorch ({ref}, the fastest PyTorch variant): "
              f"**{res['ratio_tf_vs_torch']:.2f}** (target <= 1.0: {'met' if ok else 'NOT met'}); "
              f"TF / fastest PyTorch NCHW: {res['ratio_tf_vs_torch_nchw']:.2f}"]
    return lines


def contender_summary(samples: dict[str, list[float]]) -> dict:
    """The figures :func:`contender_rows` reads, from :func:`time_interleaved`'s samples of a
    ``"TF"`` contender and ``"PyTorch ..."`` variants: medians and p10-p90 in ms, the fastest
    PyTorch variant as the reference, and TF's ratios to it and to the fastest NCHW and
    channels-last variants."""
    import numpy as np

    ms = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
    torch_ms = {k: v for k, v in ms.items() if k.startswith("PyTorch")}
    reference = min(torch_ms, key=torch_ms.get)
    out = {
        "median_ms": ms,
        "p10_p90_ms": {k: [float(np.percentile(v, 10) * 1e3), float(np.percentile(v, 90) * 1e3)]
                       for k, v in samples.items()},
        "reference": reference,
        "ratio_tf_vs_torch": ms["TF"] / ms[reference],
    }
    for layout, key in (("NCHW", "nchw"), ("channels_last", "channels_last")):
        variants = [v for k, v in torch_ms.items() if layout in k]
        if variants:
            out[f"ratio_tf_vs_torch_{key}"] = ms["TF"] / min(variants)
    return out


def runtime_info(torch_threads: int) -> dict:
    """The thread counts and versions a TF-vs-PyTorch speed figure was taken with."""
    import tensorflow as tf
    import torch

    return {
        "torch_threads": torch_threads,
        "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()],
        "tf_version": tf.__version__,
        "torch_version": torch.__version__,
    }


def cpu_record() -> dict:
    """What a CPU speed figure depends on: the processor, its widest vector unit, and whether
    TensorFlow runs oneDNN kernels (on by default only on CPUs with AVX-512; without it the
    convolutions are Eigen's)."""
    import os
    import platform
    from pathlib import Path

    from tensorflow.python.util import _pywrap_util_port

    name, flags = platform.processor() or platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(ln.split(":", 1)[1].strip() for ln in info.splitlines()
                    if ln.startswith("model name"))
        flags = next(ln for ln in info.splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "unknown"
    return {"cpu": name, "cores": os.cpu_count(), "vector": vector,
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}
