"""What every command of ``python -m tf_impl`` shares: exit codes, the model options (a zoo
name or an ``.onnx`` path, and the contract flags), the help epilog, loading the model through
its contract, and the small steps several command families repeat (the picture to explain,
class names, the exit status of an optimisation).

Command modules import from here and never from each other; everything here is public.

Input is checked at the door: counts (``--steps``, ``--batch``, ``--n``, sizes...) by the
argparse types :func:`positive_int`, :func:`non_negative_int` (0 turns the thing off) and
:func:`at_least` (usage, then one error line, exit 2); pictures by :func:`check_pictures` (the
one spec syntax of :func:`tf_impl.images.parse_image_spec`: a bundled name, a file or
``cifar10:K``) before the model is loaded; the working size by :func:`working_size` (a
fixed-size model's own, else ``--size``). A picture smaller than the working size is upscaled
with a ``note:`` (also in ``result.json``'s ``notes``); see :func:`tf_impl.images.upscale_notes`
for the smallest one taken.

Exit codes:

- ``EXIT_OK`` (0): done.
- ``EXIT_FAILED`` (1): the run failed (e.g. a NaN loss stopped it; the last finite state is
  written).
- ``EXIT_BAD_INPUT`` (2): bad input (unknown model or layer, a contract that contradicts the
  graph, an unreadable picture or contract file, an unwritable output folder, an input that
  would not fit in memory): one ``error: ...`` line on stderr.
- ``EXIT_REFERENCE_UNAVAILABLE`` (3): kept for the cross-check (``converters.crosscheck``): the
  reference side (onnxruntime or PyTorch) cannot run the model, so nothing was compared.
- ``EXIT_INTERRUPTED`` (130): Ctrl-C; what was reached is written.

The contract flags (``--contract FILE``, ``--layout``, ``--bgr``/``--rgb``, ``--scale``,
``--mean``, ``--std``, ``--input-size``, ``--output``, ``--logits``, ``--class-names``) say how
the model wants its input and where its logits are, on top of what the file's metadata, the
graph and a sidecar next to the file say (see ``converters/onnx_to_tf/contract.py``)::

    python -m tf_impl saliency --model caffe_net.onnx --bgr --scale 255 \\
        --mean 103.939,116.779,123.68 --std 1,1,1
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_REFERENCE_UNAVAILABLE",
    "EXIT_INTERRUPTED",
    "CIFAR_PREFIX",
    "CONTRACT_FLAGS",
    "CONTRACT_HELP",
    "HELP_MODELS",
    "add_contract_options",
    "add_model_options",
    "add_picture_command",
    "at_least",
    "check_pictures",
    "class_names",
    "contract_overrides",
    "epilog",
    "error_types",
    "exit_status",
    "finishes_run_folder",
    "load_model",
    "load_picture",
    "open_run_folder",
    "model_path",
    "non_negative_int",
    "positive_int",
    "prediction_fields",
    "snapshot_writer",
    "split_list",
    "working_size",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFERENCE_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130

CIFAR_PREFIX = "cifar10:"  # the same spec as tf_impl.images.CIFAR_PREFIX

# aliases worth listing in --help (the rest: python -m tf_impl layers NAME)
HELP_MODELS = ("vgg16_features", "alexnet_features", "resnet18", "resnet20_cifar")

# flag -> argparse dest of the contract options (dests prefixed so they never clash with a
# command's own options, e.g. texture's --output-size)
CONTRACT_FLAGS = {
    "--contract": "contract_file",
    "--layout": "contract_layout",
    "--bgr/--rgb": "contract_channel_order",
    "--scale": "contract_scale",
    "--mean": "contract_mean",
    "--std": "contract_std",
    "--input-size": "contract_input_size",
    "--output": "contract_output",
    "--logits": "contract_logits",
    "--class-names": "contract_class_names",
}


# -- counts: checked at parse time (argparse's usage line, then one error line, exit 2) ------
def at_least(low: int, what: str = ""):
    """An argparse type: an integer >= ``low`` (``what`` says what 0 means, for the message)."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}{what}; got {value}")
        return value

    check.__name__ = f"integer >= {low}"
    return check


positive_int = at_least(1)  # --steps, --batch, --n, --octaves, window and stride sizes...
non_negative_int = at_least(0, " (0 turns it off)")  # --snapshot-every, --jitter...


# -- help -------------------------------------------------------------------------------------
def epilog(kind: str = "layers") -> str:
    """The help epilog: the zoo's models, then (``kind="layers"``) the layer aliases of a few
    of them and the bundled images, or (``kind="classifiers"``) the zoo's classifiers and the
    images a picture command takes (a bundled photo, a file or ``cifar10:K``)."""
    import model_zoo
    from model_zoo import data

    if kind == "classifiers":
        return "\n".join([
            "models (zoo classifiers, or a path to an .onnx file):",
            "  " + ", ".join(n for n in model_zoo.available() if not n.endswith("_features")),
            "", "images (--image): a bundled photo, a file, or cifar10:K (the K-th bundled "
            "CIFAR-10 test image, 0..999); default cifar10:0 for 32x32 models, cat_dog "
            "otherwise:",
            "  " + ", ".join(data.list_images()),
            "", CONTRACT_HELP,
        ])
    if kind != "layers":
        raise ValueError(f"epilog kind must be 'layers' or 'classifiers'; got {kind!r}")
    lines = ["models (zoo names, or a path to an .onnx file):",
             "  " + ", ".join(model_zoo.available()), "", "layers (aliases; any ONNX tensor name "
             "works too; `python -m tf_impl layers MODEL` lists all):"]
    for name in HELP_MODELS:
        aliases = [a for a in model_zoo.info(name).layer_aliases if "." not in a]
        lines.append(f"  {name}: " + ", ".join(aliases))
    lines += ["", "bundled images (--image also takes a file path):",
              "  " + ", ".join(data.list_images()), "", CONTRACT_HELP]
    return "\n".join(lines)


CONTRACT_HELP = (
    "model contract: how the model wants its input (layout, RGB/BGR, scale, mean/std) and\n"
    "where its logits are is read from the file's metadata, the graph and a sidecar\n"
    "<model>.contract.json|yaml; the contract flags override it field by field. See it with\n"
    "`python -m tf_impl layers MODEL [flags]`.")


# -- the model options ------------------------------------------------------------------------
def add_contract_options(p: argparse.ArgumentParser) -> None:
    """Add the contract flags (see :data:`CONTRACT_FLAGS`) to ``p``, as one group."""
    from converters.onnx_to_tf.contract import OUTPUT_KINDS

    g = p.add_argument_group(
        "model contract", "each flag overrides the file's metadata, graph and sidecar")
    g.add_argument("--contract", dest="contract_file", metavar="FILE", default=None,
                   help="a JSON/YAML contract (the sidecar format); the flags below go on top")
    g.add_argument("--layout", dest="contract_layout", choices=("nchw", "nhwc"),
                   type=str.lower, default=None, help="the graph input's axis order")
    order = g.add_mutually_exclusive_group()
    order.add_argument("--bgr", dest="contract_channel_order", action="store_const",
                       const="BGR", default=None, help="model channel 0 is blue (Caffe)")
    order.add_argument("--rgb", dest="contract_channel_order", action="store_const",
                       const="RGB", help="model channel 0 is red")
    g.add_argument("--scale", dest="contract_scale", type=float, default=None, metavar="FLOAT",
                   help="pixel scale the model expects: 1 ([0, 1]) or 255 (0..255)")
    g.add_argument("--mean", dest="contract_mean", default=None, metavar="LIST",
                   help="per-channel mean, comma-separated, in the model's channel order and "
                   "units (e.g. --bgr --scale 255 --mean 103.939,116.779,123.68 --std 1,1,1)")
    g.add_argument("--std", dest="contract_std", default=None, metavar="LIST",
                   help="per-channel std, comma-separated, as --mean")
    g.add_argument("--input-size", dest="contract_input_size", default=None, metavar="H,W",
                   help="the input size the model needs (H,W or one int)")
    g.add_argument("--output", dest="contract_output", choices=OUTPUT_KINDS, default=None,
                   help="what the model's output is")
    g.add_argument("--logits", dest="contract_logits", default=None, metavar="TENSOR",
                   help="the tensor holding the class logits (e.g. a final Softmax's input)")
    g.add_argument("--class-names", dest="contract_class_names", default=None,
                   metavar="FILE|imagenet|cifar10", help="class names: a file (one per line, "
                   "or a JSON list) or a known set")


def add_model_options(p: argparse.ArgumentParser, default: str | None, *,
                      help: str = "zoo name or .onnx path") -> None:
    """Add ``--model`` (a zoo name or an ``.onnx`` path, default ``default``) and the contract
    flags to ``p``."""
    p.add_argument("--model", default=default, help=f"{help} (default: %(default)s)")
    add_contract_options(p)


def contract_overrides(args: argparse.Namespace) -> dict | None:
    """The contract fields the flags give: ``--contract FILE`` first (read as a sidecar), the
    other flags on top; ``None`` when none is given. An unreadable file raises
    ``converters.onnx_to_tf.ContractError`` (a ValueError)."""
    fields: dict = {}
    path = getattr(args, "contract_file", None)
    if path is not None:
        from converters.onnx_to_tf.contract_sources import read_sidecar

        fields.update(read_sidecar(path))
    layout = getattr(args, "contract_layout", None)
    flags = {
        "layout": layout.upper() if layout else None,
        "channel_order": getattr(args, "contract_channel_order", None),
        "scale": getattr(args, "contract_scale", None),
        "mean": getattr(args, "contract_mean", None),
        "std": getattr(args, "contract_std", None),
        "input_size": getattr(args, "contract_input_size", None),
        "output": getattr(args, "contract_output", None),
        "logits": getattr(args, "contract_logits", None),
        "class_names": getattr(args, "contract_class_names", None),
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    if path is None and not fields:
        return None
    return fields


def model_path(name_or_path: str) -> Path:
    """The ``.onnx`` file of a zoo name (exported on first use) or of a path; a path that is
    not a file, or not ``.onnx``, raises ValueError with one line that says what to give (a
    near zoo name as "did you mean")."""
    import model_zoo

    names = model_zoo.available()
    if name_or_path in names:
        return Path(model_zoo.load(name_or_path))
    path = Path(name_or_path)
    looks_like_path = path.suffix != "" or len(path.parts) > 1
    if not path.exists():
        if not looks_like_path:
            close = difflib.get_close_matches(name_or_path, names, n=1)
            hint = (f"did you mean {close[0]}? Or give a zoo name (`python -m model_zoo "
                    "list`)" if close else f"give a zoo name ({', '.join(names)})")
            raise ValueError(f"unknown model {name_or_path!r}: {hint} or a path to an .onnx "
                             "file")
        raise ValueError(f"model file {name_or_path} does not exist: check the path, or give "
                         "a zoo name (`python -m model_zoo list`)")
    if not path.is_file():
        raise ValueError(f"model {name_or_path} is not a file (a folder?): give a path to an "
                         ".onnx file")
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"model {name_or_path} is not an ONNX file (expected the .onnx "
                         "suffix): export it to ONNX first (e.g. converters.tf_to_onnx)")
    return path


def load_model(args: argparse.Namespace, path: str | Path | None = None, *,
               classifier: str | None = None):
    """``args.model`` (a zoo name or an ``.onnx`` path) imported with the contract flags, seen
    through its contract: a ``converters.onnx_to_tf.ContractModel`` (NCHW RGB input normalised
    by ``model.preprocessing``, logits out). ``path``: the file, when already resolved with
    :func:`model_path`. ``classifier``: what the command does with class scores; a model
    without a classifier output is then refused here, before anything is written."""
    from converters import onnx_to_tf

    overrides = contract_overrides(args)  # an unreadable --contract file: before the import
    path = model_path(args.model) if path is None else path
    model = onnx_to_tf.load(path, contract=overrides).with_contract()
    if classifier:
        from ..visualization.checks import require_classifier

        require_classifier(model, what=f"{classifier} needs")
    from .. import interrupts

    interrupts.check("while loading the model")  # Ctrl-C/SIGTERM so far: nothing to keep yet
    return model


def error_types() -> tuple[type[BaseException], ...]:
    """The errors ``main`` prints as one ``error: ...`` line with exit status 2: ValueError
    (ContractError, OnnxImportError, the techniques' own), ModelZooError, ImageError,
    MemoryPreflightError (the input would not fit in memory), OutputError and
    FileNotFoundError."""
    from converters.onnx_to_tf import ContractError, OnnxImportError
    from model_zoo import ModelZooError

    from ..images import ImageError
    from ..memory import MemoryPreflightError
    from ..report import OutputError

    return (ValueError, ContractError, OnnxImportError, ModelZooError, ImageError,
            MemoryPreflightError, OutputError, FileNotFoundError)


# -- shared steps -----------------------------------------------------------------------------
def split_list(specs) -> list[str]:
    """``["a,b", "c"]`` (repeated or comma-separated flags) -> ``["a", "b", "c"]``."""
    if isinstance(specs, str):
        specs = [specs]
    return [s.strip() for spec in (specs or []) for s in str(spec).split(",") if s.strip()]


def exit_status(result, *, prefix: str = "") -> int:
    """The exit status of an optimisation result: 0 when it ran to the end (or a callback or
    the time budget stopped it), else ``{prefix}stopped: message`` on stderr and 130 (Ctrl-C)
    or 1 (NaN)."""
    if result.stopped in (None, "callback"):
        return EXIT_OK
    if result.stopped == "time budget":  # asked for: the best iterate is kept
        print(f"{prefix}{result.message}", file=sys.stderr)
        return EXIT_OK
    print(f"{prefix}stopped: {result.message}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.interrupted else EXIT_FAILED


def snapshot_writer(out, model, every: int, prefix: str = ""):
    """An optimisation callback writing ``snapshots/{prefix}step{N:05d}.png`` (pixels) every
    ``every`` steps (never with 0); it never stops the run."""
    import numpy as np

    from .. import images as imgs

    def snapshot(step, loss, terms, opt):
        if every and step % every == 0:
            px = imgs.denormalize(opt.value(), *imgs.preprocessing_of(model))
            out.write_png(f"snapshots/{prefix}step{step:05d}.png", np.clip(px, 0, 1))
        return False

    return snapshot


def class_names(model) -> list[str] | None:
    """The model's class names (from its contract: the zoo's metadata, a sidecar or
    ``--class-names``), or None."""
    from converters.onnx_to_tf import contract_model

    names = contract_model(model).class_names
    return list(names) if names else None


def prediction_fields(names, target: int, predicted: int, target_probability: float,
                      probability: float) -> dict:
    """The class part of a ``result.json``: target and predicted class, their names (when
    known) and probabilities."""
    def named(k):
        return names[k] if names and 0 <= k < len(names) else None

    return {
        "target_class": target,
        "target_name": named(target),
        "target_probability": round(float(target_probability), 6),
        "predicted_class": predicted,
        "predicted_name": named(predicted),
        "probability": round(float(probability), 6),
    }


def add_picture_command(sub, name: str, help_: str, description: str, *,
                        epilog_text: str | None = None, quiet_help: str = "no progress bar",
                        default_model: str = "resnet20_cifar"):
    """A sub-command explaining one picture: the model options, --image, --size, --target,
    --quiet (the saliency and attribution commands)."""
    p = sub.add_parser(name, help=help_, description=description,
                       epilog=epilog("classifiers") if epilog_text is None else epilog_text,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, default_model, help="zoo classifier or .onnx path")
    p.add_argument("--image", default=None, help="bundled name, file, or cifar10:K (default: "
                   "cifar10:0 for 32x32 models, cat_dog otherwise)")
    p.add_argument("--size", type=at_least(8), default=None, help="image size for models "
                   "that take any size (default 224; a fixed-size model uses its own)")
    p.add_argument("--target", type=at_least(0), default=None, help="class to explain "
                   "(default: the predicted class)")
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    return p


def check_pictures(*specs) -> None:
    """Check image specs (``None`` skipped) before any work: the syntax of
    :func:`tf_impl.images.parse_image_spec`, a file that exists, a known name."""
    from ..images import parse_image_spec

    for spec in specs:
        if spec is not None:
            parse_image_spec(spec)


def working_size(args: argparse.Namespace, model, default: int = 224) -> int:
    """The side pictures are resized to: the model's fixed input size, else ``--size``, else
    ``default``; a ``--size`` that contradicts a fixed-size model is refused."""
    from ..visualization import checks

    fixed = checks.fixed_size(model)
    size = getattr(args, "size", None)
    if fixed is None:
        return size or default
    if size is not None and size != fixed[0]:
        raise ValueError(f"--size {size}: {args.model} takes {fixed[0]}x{fixed[1]} inputs "
                         f"only; drop --size (or give --size {fixed[0]})")
    return fixed[0]


def load_picture(args: argparse.Namespace, model):
    """``args.image`` at the model's size (a :class:`tf_impl.images.Image`: pixels (1, 3, H,
    W) in [0, 1], name, notes, true label or None): a bundled photo, a file or ``cifar10:K``.
    Its notes (converted, upscaled) are printed as ``note:`` lines."""
    from .. import images as imgs
    from ..visualization import checks

    fixed = checks.fixed_size(model)
    spec = args.image or (f"{CIFAR_PREFIX}0" if fixed == (32, 32) else "cat_dog")
    size = working_size(args, model)
    if spec.startswith(CIFAR_PREFIX) and fixed not in (None, (32, 32)):
        raise checks.VisualizationError(
            f"image {spec}: CIFAR-10 images are 32x32 and {args.model} takes {fixed[0]}x"
            f"{fixed[1]} inputs; give a file or a bundled name")
    if fixed is None:  # a size the model does not fix: does a gradient through it fit?
        from .. import memory

        memory.check_memory(model, (1, 3, size, size), None, factor=memory.GRADIENT)
    picture = imgs.load_image(spec, size)
    for note in picture.notes:
        print(f"note: {spec}: {note}", file=sys.stderr)
    return picture


# -- the run folder ---------------------------------------------------------------------------
def open_run_folder(args: argparse.Namespace):
    """The command's ``--out`` as a staged :class:`tf_impl.run_folder.RunFolder` (see there:
    refused when it holds another run, unless ``--overwrite``; moved into place when the run
    ends). ``main`` finishes it (or discards it on bad input) through ``args.run_folder``."""
    from ..run_folder import RunFolder

    out = RunFolder(args.out, overwrite=bool(getattr(args, "overwrite", False)),
                    command=["python -m tf_impl", *getattr(args, "argv", [])])
    args.run_folder = out
    return out


def finishes_run_folder(run):
    """Decorates a command's run function: the run folder it opened is moved into place (or
    discarded) when it returns or raises (:func:`tf_impl.run_folder.finishing`)."""
    from ..run_folder import finishing

    return finishing(run, bad_input=error_types, failed=EXIT_FAILED,
                     states={EXIT_OK: "complete", EXIT_INTERRUPTED: "interrupted"})
