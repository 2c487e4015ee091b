"""Fast (feed-forward) style transfer: one network, several styles, blends between them.

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016: a convolutional *transformation network* maps a content photo to
its stylised version in one forward pass. It is trained, once per style, to minimise the
perceptual losses of a fixed pretrained VGG-16 (Gatys et al. 2016):

    L = lambda_c * ||phi_j(y) - phi_j(x)||^2 / (C_j H_j W_j)            (content, relu2_2)
      + lambda_s * sum_l ||G_l(y) - G_l(s)||^2                           (style, relu1_2 ..
      + lambda_TV * TV(y)                                                  relu4_3)

with y = f_W(x), G the Gram matrix normalised by C H W (:mod:`.perceptual`). The network
downsamples with two stride-2 convolutions, applies residual blocks and upsamples back.

Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style", ICLR 2017, make one
network hold S styles: every normalisation layer is a *conditional instance normalisation*

    CIN(x; s) = gamma_s * (x - mu(x)) / sigma(x) + beta_s,

with its own (gamma_s, beta_s) per style and every other weight shared; a style is picked by
an index, and a convex combination of the styles' (gamma, beta) blends them (their Fig. 7).
From that paper too: upsampling by nearest-neighbour resize followed by a convolution instead
of a transposed convolution (no checkerboard artefacts, Odena et al. 2016), reflection
padding, and a sigmoid output (pixels in [0, 1]).

Training is *not* the shared :class:`tf_impl.optimize.Optimization` loop: that loop optimises
an image, here the network's weights are learned over a stream of random content batches. A
plain compiled step (``tf.GradientTape`` and Adam with PyTorch's arithmetic,
:class:`tf_impl.torch_optimizers.Adam`) does it, in the shared loop skeleton
(:func:`tf_impl.loop.run_steps`: a tqdm progress bar, log lines, a stop on a non-finite loss
before applying it, and on Ctrl-C what was trained is returned; the command line saves it).

The public API takes and returns NCHW pixels in [0, 1]; the network runs NHWC inside.

Example:
    >>> from tf_impl.visualization import fast_style as fs
    >>> model = fs.load()                                   # the shipped model   # doctest: +SKIP
    >>> model.styles                                                               # doctest: +SKIP
    ('starry_night', 'the_scream', 'udnie')
    >>> out = fs.apply(model, "tubingen", style="udnie", size=256)                 # doctest: +SKIP
    >>> mix = fs.apply(model, "tubingen", style=[0.5, 0.5, 0.0], size=256)         # doctest: +SKIP

Command line (:mod:`tf_impl.cli.fast_style`):

    python -m tf_impl fast-style-train --styles starry_night,udnie --out DIR
    python -m tf_impl fast-style --image tubingen --style 1 --out runs/fs

Modules: :mod:`.network` (config, the net, conditional instance normalisation, styles),
:mod:`.apply` (stylising and drawing), :mod:`.training` (perceptual losses, content photos,
the training loop), :mod:`.storage` (save, load, the shipped network).
"""

from .apply import apply, draw_styles
from .network import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    FastStyleConfig,
    FastStyleError,
    FastStyleNet,
    conditional_instance_norm,
    export_onnx,
    instance_norm,
    shipped_path,
    style_weights,
)
from .storage import load, save
from .training import (
    HELD_OUT,
    ContentSampler,
    PerceptualLoss,
    TrainResult,
    evaluation_batch,
    load_style,
    losses_on,
    train,
    training_photos,
)

__all__ = [
    "CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "HELD_OUT", "WEIGHTS_FILE", "ContentSampler",
    "FastStyleConfig", "FastStyleError", "FastStyleNet", "PerceptualLoss", "TrainResult",
    "apply", "conditional_instance_norm", "draw_styles", "losses_on", "evaluation_batch",
    "export_onnx", "instance_norm", "load", "load_style", "save", "shipped_path",
    "style_weights", "train", "training_photos",
]
