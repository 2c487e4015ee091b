"""Texture synthesis and neural style transfer: the Gatys family, by Gram-matrix matching.

Gatys, Ecker & Bethge, "Texture Synthesis Using Convolutional Neural Networks", NeurIPS 2015;
Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016.

A layer's *style* (its texture statistics) is the Gram matrix of its feature maps, its
*content* the feature maps themselves. With F_l(x) the (C_l, H_l W_l) matrix of layer l's
maps (:mod:`tf_impl.visualization.perceptual`):

    G_l(x) = F_l(x) F_l(x)^T / (C_l H_l W_l)                          (normalised Gram matrix)
    S_l(x) = mean_ij (G_l(x)_ij - G_l(style)_ij)^2                     (perceptual.style_loss)
    P_l(x) = mean (F_l(x) - F_l(content))^2                            (perceptual.content_loss)

Texture synthesis (2015, eq. 4-5) minimises, from noise,

    L_texture(x) = beta * sum_l w_l S_l(x)       over relu1_1, pool1, pool2, pool3, pool4

and style transfer (2016, eq. 7) minimises, from the content photograph,

    L(x) = alpha * P_relu4_2(x) + beta * sum_l w_l S_l(x) + lambda_TV * TV(x)
                                       over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1

with w_l = 1/5 (the paper's equal weights) and, beyond the paper, a small total-variation
prior (mean squared neighbour differences, :class:`tf_impl.priors.TotalVariation`) against
high-frequency noise, as most later implementations add. The optimisation runs in the shared
loop (:mod:`tf_impl.optimize`) on the image in the model's normalised input space, projected
onto the valid pixel box [0, 1] after every step; results are in pixel space.

**Scale of the weights.** The paper writes E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2 with
the unnormalised Gram G = F F^T (N_l = C_l channels, M_l = H_l W_l positions) and
L_content = 1/2 sum (F - P)^2. Here the Gram is divided by C H W and both losses are *means*
(the normalisation of PyTorch's neural-style tutorial), so

    S_l = 4 E_l / N_l^2        and        P_l = 2 L_content / (N_l M_l).

Neither grows with the image size. At 256x256, tubingen against starry_night,
S_l is 1e-5 .. 3e-4 over the five style layers and P_relu4_2 of the style image is ~14. The
defaults alpha = 1, beta = 1e6 (the weights of PyTorch's neural-style tutorial, which uses
this normalisation) give a strong stylisation that keeps the content recognisable (a 200-step
run at 256: ``benchmarks/results/style_transfer_256.png``). The paper's alpha / beta of 1e-3 ..
1e-4 does not carry over: besides E_l and the 1/2-sum content loss it refers to a VGG-19 fed
0..255 pixels whose weights were rescaled so each filter's mean activation is 1. Only ratios
change the result; the absolute scale matters for Adam's epsilon and L-BFGS's first step,
which is why beta is not 1.

**Layer names.** The paper names Caffe blobs, and Caffe's ReLU runs in place, so its
"conv1_1" / "conv4_2" are the *rectified* maps: ``relu1_1`` / ``relu4_2`` here (aliases of
``vgg16_features``; ``model.aliases`` lists them). The paper uses VGG-19 with average pooling;
``vgg16_features`` is VGG-16 with its max pooling as exported (aliases ``pool1``..``pool5``).

**Optimizer.** The papers use L-BFGS. Texture synthesis keeps it (``TextureConfig``: 15
steps of 20 iterations, lr 1): from noise it converges far better than Adam for the same
number of gradient evaluations (starry_night at 128x128, at most 200 evaluations: Gram loss
3.0e-5 with L-BFGS against 8.2e-5 with the best Adam learning rate tried, 0.1, and only
L-BFGS reproduces the large structures such as the stars). Style transfer defaults to Adam
(``StyleTransferConfig``: 300 steps, lr 0.02): it starts from the content photograph, where
Adam is nearly as good per evaluation (128x128, about 150 evaluations: total loss 10.1 with
lr 0.02 and 9.0 with lr 0.05 against 8.3 with L-BFGS, no visible difference), its whole
step (forward with every tap, losses, input gradient, update, box projection) is one compiled
``tf.function`` call, and the pixel box is applied after every step, whereas with L-BFGS it
is applied only after each outer step (the inner iterates may leave [0, 1] and the
projection disturbs the curvature pairs).
``with_(optimizer="lbfgs", learning_rate=1.0, steps=15)`` gives the paper's choice (and
``with_(optimizer="adam", learning_rate=0.1, steps=300)`` Adam for textures).

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> from tf_impl.visualization.style import StyleTransferConfig, style_transfer
    >>> model = onnx_to_tf.load(model_zoo.load("vgg16_features"))             # doctest: +SKIP
    >>> result = style_transfer(model, "tubingen", "starry_night")               # doctest: +SKIP
    >>> result.image.shape, result.history["style:relu3_1"][-1]                  # doctest: +SKIP
"""

from __future__ import annotations

from .config import (  # noqa: F401
    CONTENT_LAYERS,
    DEFAULT_SIZE,
    MIN_SIZE,
    STYLE_LAYERS,
    TEXTURE_LAYERS,
    StyleTransferConfig,
    TextureConfig,
)
from .drawing import (  # noqa: F401
    draw_style_transfer,
    draw_texture,
)
from .setup import target_features  # noqa: F401
from .terms import (  # noqa: F401
    ContentTerm,
    GramTerm,
    build_objective,
)
from .texture import (  # noqa: F401
    synthesize_texture,
)
from .transfer import (  # noqa: F401
    style_transfer,
)

__all__ = [
    "CONTENT_LAYERS",
    "STYLE_LAYERS",
    "TEXTURE_LAYERS",
    "ContentTerm",
    "GramTerm",
    "StyleTransferConfig",
    "TextureConfig",
    "build_objective",
    "draw_style_transfer",
    "draw_texture",
    "style_transfer",
    "synthesize_texture",
    "target_features",
]
