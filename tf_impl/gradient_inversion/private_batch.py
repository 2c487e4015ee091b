"""The private batch of a gradient-inversion experiment: real bundled images and labels.

A federated-learning client trains on data of the kind the model was made for: the bundled
CIFAR-10 test images for a 32x32 model, the bundled labelled photos (ImageNet classes)
otherwise.

>>> pixels, x, y = private_batch(model, 4)        # doctest: +SKIP
>>> shared = client_gradient(model, x, y)         # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

__all__ = ["private_batch"]


def _class_count(model) -> int | None:
    """The model's number of classes: from its class names when known, else one probe."""
    from converters.onnx_to_tf import contract_model

    try:
        view = contract_model(model)
    except TypeError:  # not an imported model: leave the labels as they are
        return None
    if view.class_names:
        return len(view.class_names)
    try:
        return int(view.num_classes)
    except (ValueError, TypeError):  # no classifier output: the attack refuses it later
        return None


def private_batch(model, n: int, first: int = 0, *, num_classes: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` bundled images with labels for ``model``, from the ``first``-th on.

    Args:
        model: the victim (``converters.onnx_to_tf`` model, seen through its contract): its
            input shape ``model.inputs[0].shape`` (NCHW) picks the data, its
            preprocessing (``tf_impl.images.preprocessing_of``) normalises it.
        n: batch size (>= 1).
        first: index of the first image.
        num_classes: the model's class count, used to fold photo labels (ImageNet indices)
            into range for a model with fewer classes; read from the model when None.

    Returns:
        ``(pixels, x, y)``: pixels in [0, 1] (n, 3, H, W), the model's normalised input and
        the int64 labels. CIFAR-10 test images for a 32x32 input, the labelled bundled photos
        at the model's size (224 when it takes any size) otherwise.

    Raises:
        ValueError: when fewer than ``n`` images are bundled from ``first`` on.
    """
    from model_zoo import data

    from .. import images as imgs

    if n < 1:
        raise ValueError(f"the batch size must be >= 1; got {n}")
    shape = model.inputs[0].shape
    mean, std = imgs.preprocessing_of(model)
    if shape[2] == 32:
        pixels, y = data.cifar10("test", n=first + n, normalize=False)
        pixels, y = pixels[first:], y[first:]
    else:
        names = [k for k in data.list_images() if data.image_label(k) is not None]
        if first + n > len(names):
            raise ValueError(f"only {len(names)} labelled photos are bundled; lower --batch or "
                             "--first")
        size = shape[2] or 224
        pixels = np.concatenate([data.image(k, size, normalize=False)
                                 for k in names[first:first + n]])
        y = np.array([data.image_label(k) for k in names[first:first + n]], np.int64)
        classes = num_classes if num_classes is not None else _class_count(model)
        if classes and y.max() >= classes:
            y = y % classes
    if len(pixels) < n:
        raise ValueError(f"not enough bundled images for --batch {n} from --first {first}")
    return pixels, imgs.normalize(pixels, mean, std), y
