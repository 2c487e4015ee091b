"""HDR-GAN's end-to-end check: ``hdr-gan``.

    python -m tf_impl hdr-gan --steps 300 --out runs/hdr
    python -m tf_impl hdr-gan --lambda-adv 0 --out runs/hdr_l1     # tonemapped L1 only
    python -m tf_impl hdr-gan --quick --steps 20 --out runs/hdr_q   # two photos, small sizes

Trains :class:`tf_impl.hdr_gan.TinyMergeNet` to merge three synthetic exposures of the bundled
photos with HDR-GAN's losses (Niu et al. 2021) and writes ``hdr_gan.png`` (exposures |
prediction | ground truth, tonemapped), ``prediction.png``, ``history.csv``/``history.png``
and ``result.json`` (PSNR-mu before/after). Ctrl-C stops training and still writes them. It
takes no model (no contract flags).
"""

from __future__ import annotations

import argparse
import sys

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    finishes_run_folder,
    open_run_folder,
    positive_int,
)


def add_parsers(sub) -> None:
    """Add ``hdr-gan`` to argparse subparsers ``sub``."""
    from ..hdr_gan import HDRGANConfig

    d = HDRGANConfig()
    p = sub.add_parser(
        "hdr-gan",
        help="merge synthetic exposures into HDR with HDR-GAN's losses (Niu et al. 2021)",
        description="Train a small generator to merge three synthetic LDR exposures of the "
        "bundled photos into an HDR image, with the mu-law tonemapped L1 and the hypersphere "
        "adversarial loss (SphereGAN) of a PatchGAN discriminator trained alternately; report "
        "the tonemapped PSNR of held-out photos before and after.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--steps", type=positive_int, default=d.optimize.steps)
    p.add_argument("--lambda-adv", type=float, default=d.lambda_adv, help="weight of the "
                   "adversarial term; 0 trains with the tonemapped L1 only (default "
                   "%(default)s)")
    p.add_argument("--lr", type=float, default=d.optimize.learning_rate, help="generator's "
                   "Adam learning rate (default %(default)s)")
    p.add_argument("--d-lr", type=float, default=d.d_learning_rate, help="discriminator's "
                   "Adam learning rate (default %(default)s)")
    p.add_argument("--moments", type=positive_int, default=d.moments,
                   help="R, the distance moments "
                   "(default %(default)s)")
    p.add_argument("--mu", type=float, default=d.mu, help="mu-law compression (default "
                   "%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quick", action="store_true", help="two training photos at 48 px, one "
                   "held-out photo at 32 px (a smoke test)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/hdr_gan", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_hdr_gan)


@finishes_run_folder
def run_hdr_gan(args) -> int:
    import numpy as np

    from ..hdr_gan import HDRGANConfig, draw_hdr_gan, train_hdr_gan

    out = open_run_folder(args)  # refuse a folder holding a run before any work
    kwargs = {}
    if args.quick:
        kwargs = {"train_photos": ("astronaut", "coffee"), "held_out": ("rocket",),
                  "image_size": 48, "eval_size": 32}
    config = HDRGANConfig(lambda_adv=args.lambda_adv, d_learning_rate=args.d_lr,
                          moments=args.moments, mu=args.mu, seed=args.seed, **kwargs).with_(
        steps=args.steps, learning_rate=args.lr, progress=not args.quiet)
    print(f"hdr-gan: {args.steps} steps, lambda_adv {args.lambda_adv}", file=sys.stderr)
    result = train_hdr_gan(config)
    name = "L1 + adv" if config.lambda_adv > 0 else "L1"
    out.write_figure("hdr_gan.png", lambda p: draw_hdr_gan(p, {name: result}))
    out.write_png("prediction.png", np.concatenate(list(result.image), axis=2))
    if result.history:
        out.write_history({name: result.history}, title="HDR-GAN training", plotted={
            name: {k: v for k, v in result.history.items() if k in ("l1", "d_loss")}})
    summary = result.summary()
    summary["extra"].pop("exposures", None)
    out.write_json("result.json", summary)
    m = result.metrics
    print(f"  PSNR-mu {m['psnr_mu_before']:.2f} -> {m['psnr_mu_after']:.2f} dB on "
          f"{', '.join(config.held_out)}; {result.steps} steps in {result.seconds:.1f} s",
          file=sys.stderr)
    print(f"wrote {out.target}/", file=sys.stderr)
    if result.stopped:
        print(f"stopped: {result.message}", file=sys.stderr)
        return EXIT_INTERRUPTED if result.interrupted else (
            EXIT_FAILED if result.stopped == "non-finite" else EXIT_OK)
    return EXIT_OK
