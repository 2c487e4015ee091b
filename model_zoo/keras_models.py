"""The zoo's Keras 3 model (``keras_cnn``): a small CIFAR-size CNN, NHWC inside Keras.

Example:
    >>> from model_zoo.keras_models import build_keras_cnn
    >>> build_keras_cnn().output_shape                # doctest: +SKIP
    (None, 10)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

KERAS_CNN_LAYERS = ("conv1", "bn1", "relu1", "pool1", "conv2", "relu2", "gap", "logits")


def build_keras_cnn(seed: int = 0) -> Any:
    """Conv2D(16,3,same)-BN-ReLU-MaxPool-Conv2D(32,3,stride 2,same)-ReLU-GAP-Dense(10).

    Kernels come from Keras' initialisers after ``keras.utils.set_random_seed(seed)``. So that
    the exported graph exercises every term, the biases and the BatchNorm parameters and
    moving statistics are then drawn from ``numpy.random.default_rng(seed)`` (Keras would
    leave them at 0 / 1, making BN and the bias adds vanish from the exported graph).

    Example:
        >>> m = build_keras_cnn()                       # doctest: +SKIP
        >>> [layer.name for layer in m.layers][:3]      # doctest: +SKIP
        ['conv1', 'bn1', 'relu1']
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ banner
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), name="image"),
            layers.Conv2D(16, 3, padding="same", name="conv1"),
            layers.BatchNormalization(epsilon=1e-5, name="bn1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, strides=2, padding="same", name="conv2"),
            layers.ReLU(name="relu2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(10, name="logits"),
        ],
        name="keras_cnn",
    )
    rng = np.random.default_rng(seed)
    for name in ("conv1", "conv2", "logits"):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
    bn = model.get_layer("bn1")
    c = bn.get_weights()[0].shape
    bn.set_weights([
        rng.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
        rng.normal(0.0, 0.1, c).astype(np.float32),  # beta
        rng.normal(0.0, 0.2, c).astype(np.float32),  # moving mean
        rng.uniform(0.5, 2.0, c).astype(np.float32),  # moving variance
    ])
    return model
