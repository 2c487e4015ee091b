"""Which pixels matter to a classifier: backprop saliency, guided backprop, occlusion, and a
segmentation seeded by the saliency map.

- **Saliency** (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
  Visualising Image Classification Models and Saliency Maps", ICLR workshop 2014, section 3):
  the gradient w = dS_c / dI of the class's *unnormalised* score S_c (the logit) with respect to
  the image, and the map M_ij = max_c |w_c,i,j| (eq. 3 and the text after it).
- **Guided backprop** (Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity:
  The All Convolutional Net", ICLR workshop 2015, section 3.4): the same gradient, but every
  ReLU passes back only positive gradients through positive inputs. The rule is applied to
  every Relu node of the ONNX graph by the importer (``model(x, relu_mode="guided")``), not by
  matching layer types.
- **Occlusion** (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
  ECCV 2014, section 4.2): a window filled with a baseline value slides over the image; each
  pixel gets the mean, over the windows that cover it, of S_c(original) - S_c(occluded). This
  is exactly Captum's ``Occlusion``: windows start at 0, step by ``stride`` until the image is
  covered (the last window along an axis may be cut off at the border), and the occluded
  inputs are batched ``batch_size`` windows per forward pass.
- **Segmentation** (Simonyan et al. 2014, section 3.1): the pixels above the 95th percentile
  of the saliency map seed the foreground colour model, those below the 30th the background
  one, and GrabCut (Rother, Kolmogorov & Blake 2004; OpenCV's ``cv2.grabCut`` with
  ``GC_INIT_WITH_MASK``) labels the rest.

Spaces. Images go in as pixels in [0, 1] (NCHW; or a bundled name / file); the model sees
``(pixel - mean) / std``. Gradients are taken with respect to that normalised *model input*
(as Captum does on the same model) unless ``wrt="pixels"`` (then divided by std per channel).
The occlusion baseline is given in pixel space by default (``0.5``: a mid-grey square, as in
Zeiler & Fergus) or in the model's input space (``baseline_space="input"``, Captum's
convention, where 0 is the dataset mean colour).

The PyTorch reference is Captum (``converters/torch_reference/saliency.py``) on the onnx2torch
copy of the same ONNX file; ``tests/visualization/test_vis_saliency.py`` checks the maps agree
to 1e-4.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))           # doctest: +SKIP
    >>> pixels, _ = model_zoo.data.cifar10("test", n=2, normalize=False)      # doctest: +SKIP
    >>> s = saliency(model, pixels)                  # target: the predicted class  # doctest: +SKIP
    >>> s.map.shape, s.predicted, s.target                                    # doctest: +SKIP
    ((2, 32, 32), array([3, 8]), array([3, 8]))
    >>> occ = occlusion(model, pixels, config=OcclusionConfig(window=8, stride=4))  # doctest: +SKIP
    >>> mask = grabcut_segmentation(pixels, s.map)   # (2, 32, 32) bool       # doctest: +SKIP

The package's modules: ``maps`` (the configs, the :class:`Attribution` record and the three
front ends over :mod:`tf_impl.attribution`), ``segmentation`` (GrabCut seeded by the saliency
map) and ``drawing`` (colour maps and figures).
"""

from .drawing import colorize, draw_guided_backprop, draw_occlusion, draw_saliency
from .maps import (
    Attribution,
    GuidedBackpropConfig,
    OcclusionConfig,
    SaliencyConfig,
    gradient_image,
    guided_backprop,
    input_gradients,
    magnitude_map,
    normalize_map,
    occlusion,
    saliency,
)
from .segmentation import (
    GrabCutConfig,
    draw_segmentation,
    grabcut_seeds,
    grabcut_segmentation,
    saliency_segmentation,
)

__all__ = [
    "Attribution",
    "GrabCutConfig",
    "GuidedBackpropConfig",
    "OcclusionConfig",
    "SaliencyConfig",
    "colorize",
    "draw_guided_backprop",
    "draw_occlusion",
    "draw_saliency",
    "draw_segmentation",
    "grabcut_seeds",
    "grabcut_segmentation",
    "gradient_image",
    "guided_backprop",
    "input_gradients",
    "magnitude_map",
    "normalize_map",
    "occlusion",
    "saliency",
    "saliency_segmentation",
]
