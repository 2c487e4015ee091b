"""Perceptual losses shared by texture synthesis, style transfer and fast style transfer.

Gatys et al. 2015/2016: a layer's style is its Gram matrix G = F F^T / (C H W) over the
channels' flattened maps; its content the feature map itself. Features are NCHW (as the
importer returns taps by default).
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf


def gram_matrix(features) -> tf.Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C * H * W."""
    f = tf.convert_to_tensor(features)
    n, c = tf.shape(f)[0], tf.shape(f)[1]
    flat = tf.reshape(f, [n, c, -1])
    size = tf.cast(tf.shape(flat)[1] * tf.shape(flat)[2], f.dtype)
    return tf.linalg.matmul(flat, flat, transpose_b=True) / size


def style_loss(features: Mapping[str, tf.Tensor], target_grams: Mapping[str, tf.Tensor],
               weights: Mapping[str, float] | None = None) -> tf.Tensor:
    """sum_l w_l * mean((G_l(x) - G_l(style))^2), averaged over the batch."""
    terms = []
    for name, target in target_grams.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        terms.append(w * tf.reduce_mean(tf.square(gram_matrix(features[name]) - target)))
    return tf.add_n(terms)


def content_loss(features: Mapping[str, tf.Tensor], targets: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """sum_l mean((F_l(x) - F_l(content))^2)."""
    return tf.add_n([tf.reduce_mean(tf.square(features[k] - t)) for k, t in targets.items()])
