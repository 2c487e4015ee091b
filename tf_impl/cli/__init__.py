"""Command line: ``python -m tf_impl <technique> ...``.

    python -m tf_impl feature-inversion --model vgg16_features --layer conv3_1 \\
        --image astronaut --steps 300 --out runs/fi
    python -m tf_impl gradient-inversion --model resnet20_cifar --batch 4 \\
        --attack gradinversion --out runs/gi
    python -m tf_impl saliency|occlusion|guided-backprop --model resnet20_cifar --out runs/sal
    python -m tf_impl class-viz|adversarial|deepdream ...
    python -m tf_impl texture|style-transfer|fast-style|fast-style-train ...
    python -m tf_impl integrated-gradients|idgi|fullgrad|attribution-eval ...
    python -m tf_impl hdr-gan --steps 300 --out runs/hdr
    python -m tf_impl layers resnet20_cifar          # the contract and every tappable tensor
    python -m tf_impl sweep benchmarks/grids/feature_inversion_lr_tv.yaml --out runs/sweep

Each technique writes its pictures, its loss history (CSV and plot) and a ``result.json``
into ``--out``. Ctrl-C stops the optimisation and still writes what was reached.

One module per command family, each with ``add_parsers(sub)``; they share
:mod:`tf_impl.cli.common` (exit codes, the model and contract options, ``load_model``) and
never import each other:

- :mod:`.feature_inversion`: ``feature-inversion``
- :mod:`.gradient_inversion`: ``gradient-inversion``
- :mod:`.saliency`: ``saliency``, ``guided-backprop``, ``occlusion``
- :mod:`.ascent`: ``class-viz``, ``adversarial``, ``deepdream``
- :mod:`.style`: ``texture``, ``style-transfer``
- :mod:`.fast_style`: ``fast-style``, ``fast-style-train``
- :mod:`.attribution`: ``integrated-gradients``, ``idgi``, ``fullgrad``
- :mod:`.attribution_eval`: ``attribution-eval``
- :mod:`.hdr_gan`: ``hdr-gan``
- :mod:`.layers`: ``layers``
- :mod:`.sweep`: ``sweep`` (a grid of runs of any command above, as jobs on Ray)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from .common import EXIT_BAD_INPUT, EXIT_OK, error_types

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# the command families, in the order of `python -m tf_impl --help`
COMMAND_MODULES = ("feature_inversion", "gradient_inversion", "saliency", "ascent", "style",
                   "fast_style", "attribution", "attribution_eval", "hdr_gan", "layers", "sweep")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m tf_impl``: one sub-command per technique."""
    parser = argparse.ArgumentParser(
        prog="python -m tf_impl",
        description="Model inversion and CNN visualization on ONNX models, in TensorFlow.",
    )
    sub = parser.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parsers(sub)
    # a sweep checks its grid against this parser and runs each job through main()
    sub.choices["sweep"].set_defaults(command_parser=parser, job=main)
    for name, p in sub.choices.items():  # one run-folder policy (tf_impl/run_folder.py)
        if name != "sweep" and any("--out" in a.option_strings for a in p._actions):
            p.add_argument("--overwrite", action="store_true",
                           help="replace the run already in --out when this run ends (without "
                           "it, a folder that holds a run is refused)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status. Bad input (see
    :func:`tf_impl.cli.common.error_types`) prints one ``error: ...`` line and returns 2, and
    leaves no run folder. Ctrl-C and SIGTERM stop the run the same way at every stage (see
    :mod:`tf_impl.interrupts`): what was reached is kept, marked partial, exit 130 / 143."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"]:  # a finished sweep is answered without loading TensorFlow
        done = importlib.import_module(f"{__name__}.sweep").finished_sweep(argv[1:])
        if done is not None:
            return done
    from .. import interrupts

    t0 = time.perf_counter()
    try:
        with interrupts.graceful_stop() as seen:  # from here on: no Ctrl-C traceback
            import converters  # noqa: F401  (blocks a crashing triton import)
            from converters.quiet_import import import_tensorflow

            import_tensorflow()  # without TensorFlow's C++ start-up lines on stderr

            parser = build_parser()
            args = parser.parse_args(argv)
            args.argv = argv
            t0 = time.perf_counter()
            status, kept = _run(args)
    except interrupts.StopNow as stop:  # a second signal before the command started
        print(f"{interrupts.signal_name(stop.signum)}: stopped at once; nothing was written",
              file=sys.stderr)
        return interrupts.exit_code(stop.signum)
    seconds = f"{time.perf_counter() - t0:.1f} s"
    if seen.signum is not None:  # asked to stop: the run kept what it reached (or ended)
        status = interrupts.exit_code(seen.signum)
        print(f"{interrupts.signal_name(seen.signum)}: stopped after {seconds}; {kept}",
              file=sys.stderr)
    elif status == EXIT_OK:
        print(f"done in {seconds}", file=sys.stderr)
    elif status != EXIT_BAD_INPUT:
        print(f"stopped after {seconds}" + (f"; {kept}" if kept else ""), file=sys.stderr)
    return status


def _run(args) -> tuple[int, str]:
    """``args.run(args)`` (its run folder finished by :func:`common.finishes_run_folder`):
    (exit status, what was kept, in words); bad input prints its one ``error:`` line."""
    from .. import interrupts

    try:
        status = args.run(args)
    except interrupts.StopNow as stop:
        return interrupts.exit_code(stop.signum), getattr(args, "kept", "nothing was written")
    except Exception as err:
        if interrupts.at_once():  # a second signal, surfacing as whatever TensorFlow raised
            return interrupts.exit_code(interrupts.requested()), "at once: nothing was kept"
        if not isinstance(err, error_types()):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT, "nothing was written"
    return status, getattr(args, "kept", "")


if __name__ == "__main__":
    sys.exit(main())
