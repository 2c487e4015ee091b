"""The PatchGAN discriminator (pix2pix's 70x70) and the tiny exposure-merging generator."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .losses import HDRGANError

_D_WIDTHS = (64, 128, 256, 512)  # pix2pix's 70x70 PatchGAN, then one output channel
_D_STRIDES = (2, 2, 2, 1, 1)



def _nchw(x, channels: int, what: str) -> tf.Tensor:
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 4 or x.shape[1] != channels:
        raise HDRGANError(f"{what} must be an NCHW batch (N, {channels}, H, W); got shape "
                          f"{tuple(x.shape)}")
    return x


def _leaky(x, slope: float = 0.2):
    # max(x, 0.2 x) is LeakyReLU(0.2); written out because grappler's remapper logs an error
    # when it tries to fuse LeakyRelu's gradient with the bias add
    return tf.maximum(x, slope * x)


class PatchDiscriminator(tf.Module):
    """pix2pix's 70x70 PatchGAN (Isola et al. 2017), HDR-GAN's discriminator: five 4x4
    convolutions with strides 2, 2, 2, 1, 1 and zero padding 1, widths 64-128-256-512-1 (times
    ``width``), LeakyReLU 0.2 after the first four, no normalisation, no sigmoid. A 64x64
    input gives a 6x6 map of patch scores (each sees 70x70 pixels).

    Input and output are NCHW; weights are HWIO ``tf.Variable``s initialised N(0, 0.02) as
    in pix2pix (seeded).
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, *, seed: int = 0,
                 name: str = "patch_discriminator"):
        super().__init__(name=name)
        if not width > 0:
            raise HDRGANError(f"width must be > 0; got {width}")
        self.in_channels = int(in_channels)
        widths = [max(1, round(c * width)) for c in _D_WIDTHS] + [1]
        rng = np.random.default_rng(seed)
        self.kernels, self.biases = [], []
        cin = self.in_channels
        for i, cout in enumerate(widths):
            w = rng.normal(0.0, 0.02, (4, 4, cin, cout)).astype(np.float32)
            self.kernels.append(tf.Variable(w, name=f"conv{i + 1}_kernel"))
            self.biases.append(tf.Variable(np.zeros(cout, np.float32), name=f"conv{i + 1}_bias"))
            cin = cout
        self.widths = tuple(widths)

    def __call__(self, images) -> tf.Tensor:
        x = _nchw(images, self.in_channels, "the discriminator's input")
        if x.shape[2] is not None and (x.shape[2] < 32 or x.shape[3] < 32):
            raise HDRGANError(f"the PatchGAN needs inputs of at least 32x32 pixels; got "
                              f"{x.shape[2]}x{x.shape[3]}")
        h = tf.transpose(x, [0, 2, 3, 1])
        last = len(self.kernels) - 1
        for i, (w, b, s) in enumerate(zip(self.kernels, self.biases, _D_STRIDES)):
            h = tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]])
            h = tf.nn.bias_add(tf.nn.conv2d(h, w, s, "VALID"), b)
            if i < last:
                h = _leaky(h)
        return tf.transpose(h, [0, 3, 1, 2])

    def weights(self) -> dict[str, np.ndarray]:
        """``{"conv1_kernel": HWIO array, "conv1_bias": ..., ...}`` (for the PyTorch side)."""
        out = {}
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            out[f"conv{i + 1}_kernel"], out[f"conv{i + 1}_bias"] = w.numpy(), b.numpy()
        return out


class TinyMergeNet(tf.Module):
    """A stand-in for HDR-GAN's generator, small enough for a CPU: three 3x3 convolutions
    (reflection padding, LeakyReLU 0.2, ``width`` channels) from the K exposures' inputs
    (each LDR_k and T(LDR_k^gamma / t_k), 6 channels, as HDR-GAN feeds them) to the
    tonemapped HDR image T(H) through a sigmoid; H = :func:`inverse_mu_law` of it.
    """

    def __init__(self, exposures: int = 3, width: int = 16, *, seed: int = 0,
                 name: str = "tiny_merge_net"):
        super().__init__(name=name)
        if exposures < 1 or width < 1:
            raise HDRGANError(f"exposures and width must be >= 1; got {exposures}, {width}")
        self.exposures = int(exposures)
        rng = np.random.default_rng(seed)
        sizes = [6 * self.exposures, width, width, 3]
        self.kernels, self.biases = [], []
        for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = rng.normal(0.0, math.sqrt(2.0 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32)
            self.kernels.append(tf.Variable(w, name=f"conv{i + 1}_kernel"))
            self.biases.append(tf.Variable(np.zeros(cout, np.float32), name=f"conv{i + 1}_bias"))

    def __call__(self, inputs) -> tf.Tensor:
        """``inputs`` from :func:`generator_inputs` (N, 6K, H, W) -> T(H_pred) (N, 3, H, W)."""
        x = _nchw(inputs, 6 * self.exposures, "the generator's input")
        h = tf.transpose(x, [0, 2, 3, 1])
        last = len(self.kernels) - 1
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            h = tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            h = tf.nn.bias_add(tf.nn.conv2d(h, w, 1, "VALID"), b)
            h = _leaky(h) if i < last else tf.sigmoid(h)
        return tf.transpose(h, [0, 3, 1, 2])
