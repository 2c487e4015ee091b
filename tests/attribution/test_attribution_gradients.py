"""Saliency, guided backprop and occlusion in the attribution package's one call shape,
against Captum on the onnx2torch copy of the same ONNX file (relative error 1e-4), and the
call shape itself across every attribution method."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from compare import rel_error

from converters.torch_reference import saliency as ref
from tf_impl.attribution import (
    blur_ig,
    fullgrad,
    gradients,
    guided_ig,
    idgi,
    integrated_gradients,
    occlusion,
)
from tf_impl.attribution.common import AttributionError
from tf_impl.visualization import saliency as vis

TOL = 1e-4

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU:UserWarning"),
]


@pytest.fixture(scope="module")
def batch():
    import model_zoo

    x, _ = model_zoo.data.cifar10("test", n=2)  # normalised for resnet20_cifar
    return x


def test_saliency_and_guided_backprop_match_captum(resnet20_path, resnet20, batch):
    targets = np.argmax(np.asarray(resnet20(batch)), 1)
    theirs = ref.saliency_torch(resnet20_path, batch, targets)
    ours = gradients.saliency(resnet20, batch)
    assert rel_error(ours, theirs["attribution"]) < TOL
    signed = gradients.saliency(resnet20, batch, abs=False)
    assert np.array_equal(np.abs(signed), ours) and (signed < 0).any()
    guided = gradients.guided_backprop(resnet20, batch, targets)
    assert rel_error(guided, ref.guided_backprop_torch(resnet20_path, batch, targets)) < TOL
    # the pixel-level front end is the same gradient, reduced to a map
    pixels_front = vis.saliency(resnet20, vis_pixels(resnet20, batch), targets)
    np.testing.assert_allclose(pixels_front.map, gradients.channel_max(signed), rtol=1e-5,
                               atol=1e-7)


def vis_pixels(model, x):
    from tf_impl import images as imgs

    mean, std = imgs.preprocessing_of(model)
    return imgs.denormalize(x, mean, std)


def test_occlusion_matches_captum(resnet20_path, resnet20, batch):
    targets = np.argmax(np.asarray(resnet20(batch)), 1)
    ours = occlusion.occlusion(resnet20, batch, targets, 0.0, window=8, stride=4)
    assert ours.shape == batch.shape
    assert np.array_equal(ours[:, 0], ours[:, 2])  # the window covers every channel
    theirs = ref.occlusion_torch(resnet20_path, batch, targets, window=8, stride=4, baseline=0.0)
    assert rel_error(ours, np.asarray(theirs)) < TOL


@pytest.mark.parametrize("method", [gradients.saliency, gradients.guided_backprop,
                                    occlusion.occlusion, fullgrad.fullgrad])
def test_methods_without_a_path_refuse_a_baseline_and_a_delta(resnet20, batch, method):
    with pytest.raises(AttributionError, match="baseline"):
        method(resnet20, batch[:1], None, np.zeros_like(batch[:1]) if method is not
               occlusion.occlusion else np.zeros((5,)))
    if method is not fullgrad.fullgrad:
        with pytest.raises(AttributionError, match="return_delta=False"):
            method(resnet20, batch[:1], return_delta=True)


def test_occlusion_bad_windows(resnet20, batch):
    with pytest.raises(AttributionError, match="larger than the image 32x32"):
        occlusion.occlusion(resnet20, batch[:1], window=40, stride=4)
    with pytest.raises(AttributionError, match="larger than the window"):
        occlusion.occlusion(resnet20, batch[:1], window=4, stride=8)
    with pytest.raises(AttributionError, match="positive int"):
        occlusion.occlusion(resnet20, batch[:1], window=0)
    with pytest.raises(AttributionError, match="out of range"):
        gradients.saliency(resnet20, batch[:1], target=10)


def test_every_method_has_the_one_call_shape():
    methods = [gradients.saliency, gradients.guided_backprop, occlusion.occlusion,
               integrated_gradients.integrated_gradients, guided_ig.guided_ig, blur_ig.blur_ig,
               idgi.idgi, fullgrad.fullgrad]
    for m in methods:
        params = list(inspect.signature(m).parameters)
        assert params[:4] == ["model", "inputs", "target", "baseline"], m.__name__
        assert "return_delta" in params, m.__name__
