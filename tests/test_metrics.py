"""tf_impl.metrics against the references: scikit-image (PSNR, SSIM) and the lpips package.

Tolerances: 1e-4 absolute against skimage for float32 inputs (measured: ~1e-6) and 1e-10 for
float64 inputs (same arithmetic, measured ~1e-15); 1e-4 absolute against lpips with the same
backbone weights; input gradients of LPIPS within rtol 1e-3 of PyTorch's.
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: blocks the triton import)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from model_zoo import data
from tf_impl import metrics

NOISE = (0.01, 0.05, 0.2)
SSIM_SETTINGS = {
    "skimage-default": {},
    "wang2004": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False},
    "box5": {"win_size": 5},
    "gauss-sigma1-sample-cov": {"gaussian_weights": True, "sigma": 1.0},
}


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Three real photos, 64 x 64, NCHW in [0, 1] (one of them grayscale turned RGB)."""
    return np.concatenate(
        [data.image(n, size=64, normalize=False) for n in ("astronaut", "chelsea", "camera")]
    )


def _noisy(x: np.ndarray, sigma: float, seed: int = 0, clip: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
    return np.clip(y, 0, 1) if clip else y.astype(np.float32)


def _nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


# -- PSNR --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("sigma", NOISE)
def test_psnr_matches_skimage(photos, sigma, layout):
    x, y = photos, _noisy(photos, sigma, clip=False)  # y leaves [0, 1]: clip matters
    a, b = (x, y) if layout == "NCHW" else (_nhwc(x), _nhwc(y))
    raw = [
        sk_psnr(p.astype(np.float64), q.astype(np.float64), data_range=1.0) for p, q in zip(x, y)
    ]
    clipped = [
        sk_psnr(p.astype(np.float64), np.clip(q, 0, 1).astype(np.float64), data_range=1.0)
        for p, q in zip(x, y)
    ]
    ours = metrics.psnr(a, b, layout=layout, clip=False)
    assert ours.shape == (3,)
    np.testing.assert_allclose(ours.numpy(), raw, rtol=0, atol=1e-4)
    np.testing.assert_allclose(metrics.psnr(a, b, layout=layout).numpy(), clipped, atol=1e-4)
    single = metrics.psnr(a[1], b[1], layout=layout, clip=False)
    assert single.shape == () and abs(float(single) - raw[1]) < 1e-4


def test_psnr_data_range_and_identical_images(photos):
    x, y = 255 * photos, 255 * _noisy(photos, 0.05)
    ref = [
        sk_psnr(p.astype(np.float64), q.astype(np.float64), data_range=255) for p, q in zip(x, y)
    ]
    np.testing.assert_allclose(metrics.psnr(x, y, data_range=255).numpy(), ref, atol=1e-4)
    assert np.isposinf(metrics.psnr(photos, photos).numpy()).all()


# -- SSIM --------------------------------------------------------------------------------------
def _sk_ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0, **kw) -> np.ndarray:
    """skimage on each NCHW image, channels last, in float64 (the reference value)."""
    return np.array(
        [
            sk_ssim(
                p.transpose(1, 2, 0).astype(np.float64),
                q.transpose(1, 2, 0).astype(np.float64),
                data_range=data_range,
                channel_axis=-1,
                **kw,
            )
            for p, q in zip(x, y)
        ]
    )


@pytest.mark.parametrize("setting", list(SSIM_SETTINGS))
@pytest.mark.parametrize("sigma", NOISE)
def test_ssim_matches_skimage(photos, sigma, setting):
    kw = SSIM_SETTINGS[setting]
    x, y = photos, _noisy(photos, sigma)
    ref = _sk_ssim(x, y, **kw)
    ours = metrics.ssim(x, y, **kw)
    assert ours.shape == (3,) and ours.dtype == tf.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-4)
    nhwc = metrics.ssim(_nhwc(x), _nhwc(y), layout="NHWC", **kw)
    np.testing.assert_allclose(nhwc.numpy(), ref, rtol=0, atol=1e-4)
    f64 = metrics.ssim(x.astype(np.float64), y.astype(np.float64), **kw)
    assert f64.dtype == tf.float64
    np.testing.assert_allclose(f64.numpy(), ref, rtol=0, atol=1e-10)


def test_ssim_reflect_boundary_odd_shapes_and_data_range(photos):
    # a Gaussian wider than the crop (radius 5, crop 1) reads the reflected border; a
    # non-square single-channel image and data_range=255 exercise the remaining paths
    x = 255 * photos[:2, :1, 5:25, 10:23]
    y = 255 * _noisy(photos, 0.1)[:2, :1, 5:25, 10:23]
    kw = {"gaussian_weights": True, "win_size": 3, "data_range": 255}
    ref = _sk_ssim(x, y, **kw)
    np.testing.assert_allclose(metrics.ssim(x, y, **kw).numpy(), ref, atol=1e-4)
    single = metrics.ssim(x[0].astype(np.float64), y[0].astype(np.float64), **kw)
    assert single.shape == () and abs(float(single) - ref[0]) < 1e-10
    smallest = photos[:1, :, :7, :7]  # exactly the default window
    np.testing.assert_allclose(
        metrics.ssim(smallest, smallest * 0.9).numpy(),
        _sk_ssim(smallest, smallest * 0.9),
        atol=1e-4,
    )


@pytest.mark.parametrize("fn", ["psnr", "ssim"])
def test_psnr_ssim_gradients_match_finite_differences(photos, fn):
    # pixels kept inside (0.05, 0.95) so that PSNR's clamp to [0, 1] has no kink nearby
    x = 0.05 + 0.9 * photos[:2, :, :24, :24].astype(np.float64)
    y = tf.constant(0.05 + 0.9 * _noisy(photos, 0.1)[:2, :, :24, :24].astype(np.float64))
    v = np.random.default_rng(1).standard_normal(x.shape)
    f = getattr(metrics, fn)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(f(xv, y))
    g = tape.gradient(loss, xv).numpy()
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    h = 1e-6  # central difference in float64
    fd = (float(tf.reduce_sum(f(x + h * v, y))) - float(tf.reduce_sum(f(x - h * v, y)))) / (2 * h)
    assert abs(np.sum(g * v) - fd) <= 1e-5 * max(1.0, abs(fd))


# -- LPIPS -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lpips_pair(photos) -> tuple[np.ndarray, np.ndarray]:
    x = photos[:2]
    return x, _noisy(x, 0.1, seed=3)


@pytest.fixture(scope="module", params=["vgg", "alex"])
def nets(request):
    from converters.torch_reference.metrics import lpips_torch

    return metrics.LPIPS(request.param), lpips_torch(request.param)


def _torch_lpips(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        d = model(torch.from_numpy(x), torch.from_numpy(y), normalize=True)
    return d.numpy().reshape(-1)


def test_lpips_matches_lpips_package(nets, lpips_pair):
    ours, ref_model = nets
    x, y = lpips_pair
    ref = _torch_lpips(ref_model, x, y)
    assert (ref > 0.01).all()  # a meaningful distance, not two near-identical images
    d = ours(x, y)
    assert d.shape == (2,) and d.dtype == tf.float32
    np.testing.assert_allclose(d.numpy(), ref, rtol=0, atol=1e-4)
    nhwc = ours(_nhwc(x), _nhwc(y), layout="NHWC")
    np.testing.assert_allclose(nhwc.numpy(), ref, rtol=0, atol=1e-4)
    single = ours(x[1], y[1])
    assert single.shape == () and abs(float(single) - ref[1]) < 1e-4
    # grayscale: lpips broadcasts one channel over its RGB scaling; so do we
    gray = ours(x[:, :1], y[:, :1]).numpy()
    np.testing.assert_allclose(gray, _torch_lpips(ref_model, x[:, :1], y[:, :1]), atol=1e-4)
    np.testing.assert_array_equal(ours(x, x).numpy(), [0.0, 0.0])


def test_lpips_input_gradient_matches_torch(lpips_pair):
    from converters.torch_reference.metrics import lpips_torch

    x, y = lpips_pair
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(metrics.lpips(xv, y, net="vgg"))
    g = tape.gradient(loss, xv).numpy()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    lpips_torch("vgg")(xt, torch.from_numpy(y), normalize=True).sum().backward()
    ref = xt.grad.numpy()
    assert np.isfinite(g).all() and np.abs(ref).max() > 0
    np.testing.assert_allclose(g, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    assert np.linalg.norm(g - ref) <= 1e-3 * np.linalg.norm(ref)


def test_lpips_is_loaded_once_per_net_and_cache():
    a, b = metrics.LPIPS("vgg"), metrics.LPIPS("VGG16")
    assert a.model is b.model and a.heads is b.heads and a.net == "vgg"
    assert metrics.LPIPS("alexnet").model is not a.model


def test_summary_matches_the_metrics(lpips_pair):
    x, y = lpips_pair
    out = metrics.summary(x, y, nets=("vgg", "alex"))
    assert set(out) == {"psnr", "ssim", "lpips_vgg", "lpips_alex"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["psnr"] == pytest.approx(float(np.mean(metrics.psnr(x, y))), abs=1e-5)
    assert out["ssim"] == pytest.approx(float(np.mean(metrics.ssim(x, y))), abs=1e-6)
    assert out["lpips_alex"] == pytest.approx(float(np.mean(metrics.lpips(x, y, "alex"))), abs=1e-6)


# -- errors ------------------------------------------------------------------------------------
def test_errors_name_the_problem_and_the_fix(photos):
    x = photos[:2]
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3, 64, 64\).*\(2, 3, 32, 32\).*crop"):
        metrics.psnr(x, x[:, :, :32, :32])
    with pytest.raises(ValueError, match=r"same shape"):
        metrics.ssim(x, x[:1])
    with pytest.raises(ValueError, match=r"expected two NCHW batches.*\(64, 64\).*channel axis"):
        metrics.ssim(x[0, 0], x[1, 0])
    with pytest.raises(ValueError, match=r"layout must be 'NCHW' or 'NHWC'"):
        metrics.psnr(x, x, layout="CHWN")
    with pytest.raises(ValueError, match=r"data_range must be a positive number"):
        metrics.psnr(x, x, data_range=0)
    with pytest.raises(ValueError, match=r"smaller than the 7-pixel window.*smaller odd win_size"):
        metrics.ssim(x[:, :, :6, :6], x[:, :, :6, :6])
    with pytest.raises(ValueError, match=r"smaller than the 11-pixel window"):
        metrics.ssim(x[:, :, :9, :9], x[:, :, :9, :9], gaussian_weights=True)
    with pytest.raises(ValueError, match=r"win_size must be an odd integer"):
        metrics.ssim(x, x, win_size=6)
    with pytest.raises(ValueError, match=r"unknown net 'resnet'.*'vgg'.*'alex'"):
        metrics.LPIPS("resnet")
    four = np.concatenate([x, x[:, :1]], axis=1)
    with pytest.raises(ValueError, match=r"1 or 3 channels, got 4.*layout"):
        metrics.lpips(four, four, net="alex")
    with pytest.raises(ValueError, match=r"15 x 15 pixels are too small.*at least 16 x 16"):
        metrics.lpips(x[:, :, :15, :15], x[:, :, :15, :15], net="vgg")
    with pytest.raises(ValueError, match=r"1 or 3 channels, got 64"):  # NHWC passed as NCHW
        metrics.lpips(_nhwc(x), _nhwc(x), net="alex")
