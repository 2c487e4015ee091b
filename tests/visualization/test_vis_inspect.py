"""Filters, activation maps, maximally activating patches, neighbours and 2-D embeddings.

Witnesses: the ONNX file itself (read with ``onnx``) for the filters, onnxruntime for the
activation maps (the intermediate tensor added to the graph's outputs), a brute-force scan for
the top-k activations, the gradient of one unit with respect to the input for the receptive
fields, plain numpy for the distances. Small models at 32x32 and a few dozen CIFAR images.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from onnx_builders import make_model

import model_zoo
from converters import onnx_to_tf
from tf_impl import images as imgs
from tf_impl.visualization import embedding as E
from tf_impl.visualization import filters as F
from tf_impl.visualization import patches as P
from tf_impl.visualization import receptive_field as RF
from tf_impl.visualization.checks import VisualizationError

NAMES = ("resnet20_cifar", "lenet_dlg10", "keras_cnn")


@pytest.fixture(scope="module")
def models():
    return {n: onnx_to_tf.load(model_zoo.load(n)) for n in NAMES}


@pytest.fixture(scope="module")
def cifar():
    return model_zoo.data.cifar10("test", n=48, normalize=False)


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).uniform(0, 1, (4, 3, 32, 32)).astype(np.float32)


def _minmax(w, axes):
    lo, hi = w.min(axis=axes, keepdims=True), w.max(axis=axes, keepdims=True)
    return (w - lo) / (hi - lo)


def _onnx_conv_weight(name, pick):
    """(Conv node, its weight) straight from the ONNX file; ``pick(conv_nodes)`` chooses."""
    proto = onnx.load(model_zoo.load(name))
    node = pick([n for n in proto.graph.node if n.op_type == "Conv"])
    init = {t.name: t for t in proto.graph.initializer}[node.input[1]]
    return node, numpy_helper.to_array(init).astype(np.float32)


def _ort_tensor(name, tensor, x):
    """``tensor`` computed by onnxruntime, exposed by adding it to the graph's outputs."""
    proto = onnx.load(model_zoo.load(name))
    proto.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([tensor], {proto.graph.input[0].name: x})[0]


# -- filters --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_first_layer_filters_are_the_onnx_initializer_min_max_scaled(models, name):
    _, w = _onnx_conv_weight(name, lambda convs: convs[0])  # (O, 3, kh, kw)
    got = F.first_layer_filters(models[name])
    assert got.shape == (w.shape[0], w.shape[2], w.shape[3], 3)
    np.testing.assert_allclose(got, _minmax(w, (1, 2, 3)).transpose(0, 2, 3, 1), atol=1e-6)
    assert np.allclose(got.min(axis=(1, 2, 3)), 0) and np.allclose(got.max(axis=(1, 2, 3)), 1)


@pytest.mark.parametrize("layer", ["layer1.0.conv1", "layer1.0.bn1",
                                   "/layer1/layer1.0/Relu_output_0"])
def test_layer_filters_tile_each_in_channel_kernel(models, layer):
    """The conv itself, its BatchNorm and its ReLU (a raw tensor name) all give its kernels."""
    conv = "/layer1/layer1.0/conv1/Conv"
    _, w = _onnx_conv_weight("resnet20_cifar", lambda cs: next(c for c in cs if c.name == conv))
    grids = F.layer_filters(models["resnet20_cifar"], layer, pad_value=-1.0)
    o, i, kh, kw = w.shape  # 16 in-channels: 4 x 4 tiles of 3x3 with 1-pixel separators
    assert grids.shape == (o, 4 * (kh + 1) - 1, 4 * (kw + 1) - 1)
    want = _minmax(w, (1, 2, 3))
    for oc in (0, 7, o - 1):
        for ic in range(i):
            r, c = divmod(ic, 4)
            tile = grids[oc, r * (kh + 1): r * (kh + 1) + kh, c * (kw + 1): c * (kw + 1) + kw]
            np.testing.assert_allclose(tile, want[oc, ic], atol=1e-6)
    assert np.all(grids[:, kh, :] == -1.0)  # a separator row
    raw = F.layer_filters(models["resnet20_cifar"], layer, normalize="none")
    np.testing.assert_allclose(raw[3, :kh, :kw], w[3, 0], atol=1e-7)


def test_layer_filters_walk_back_through_relu_and_folded_batchnorm(models):
    _, w2 = _onnx_conv_weight("keras_cnn", lambda convs: convs[1])
    np.testing.assert_allclose(F.conv_kernels(models["keras_cnn"], "relu2").weights, w2)
    _, w1 = _onnx_conv_weight("keras_cnn", lambda convs: convs[0])
    np.testing.assert_allclose(F.conv_kernels(models["keras_cnn"], "relu1").weights, w1)


@pytest.mark.parametrize("name, layer, match", [
    ("resnet20_cifar", "layer1", r"Add node .* layer1\.0\.conv1"),
    ("keras_cnn", "pool1", "MaxPool"),
    ("keras_cnn", "input", "the model's input"),
    ("keras_cnn", "conv9", r"no tensor or alias named 'conv9'.*Aliases: .*conv1"),
])
def test_layers_without_kernels_are_refused_with_the_conv_layers(models, name, layer, match):
    with pytest.raises(VisualizationError, match=match):
        F.layer_filters(models[name], layer)


@pytest.mark.parametrize("name, layer", [
    ("resnet20_cifar", "layer1.0.conv1"), ("resnet20_cifar", "layer2"),
    ("lenet_dlg10", "act2"), ("keras_cnn", "pool1"), ("keras_cnn", "output"),
])
def test_activations_equal_onnxruntime(models, cifar, name, layer):
    model = models[name]
    pixels = cifar[0][5]
    got = F.activations(model, pixels, layer)
    x = imgs.normalize(pixels[None], *imgs.preprocessing_of(model))
    ref = _ort_tensor(name, model.resolve(layer), x)[0]
    ref = ref if ref.ndim == 3 else ref[:, None, None]
    assert got.shape == ref.shape
    # rtol 1e-5, with the absolute floor 1e-5 of the tensor's scale (values near zero)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_activations_refuse_a_batch_and_a_wrong_size(models, cifar):
    with pytest.raises(VisualizationError, match="one image"):
        F.activations(models["lenet_dlg10"], cifar[0][:2], "act1")
    with pytest.raises(VisualizationError, match="takes 32x32 images"):
        F.activations(models["lenet_dlg10"], np.zeros((3, 40, 40), np.float32), "act1")


# -- receptive fields -----------------------------------------------------------------------
def _box_mask(rf, y, x, hw=(32, 32)):
    y0, y1, x0, x1 = rf.box(y, x, hw)
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("name, layer", [
    ("resnet20_cifar", "layer1.0.conv1"), ("resnet20_cifar", "layer1"),
    ("resnet20_cifar", "layer2.0"),  # the stride-2 block: conv path and Slice/Pad shortcut
    ("resnet20_cifar", "layer3"), ("resnet20_cifar", "avgpool"),
    ("lenet_dlg10", "act2"), ("keras_cnn", "pool1"), ("keras_cnn", "relu2"),
])
def test_receptive_field_equals_the_gradient_support(models, noise, name, layer):
    model = models[name]
    rf = RF.receptive_field(model, layer)
    h, w = F.activations(model, noise[0], layer).shape[1:]
    for y, x in {(0, 0), (h // 2, w // 2), (h - 1, w - 1), (0, w - 1)}:
        support = RF.gradient_support(model, layer, (y, x), noise)
        np.testing.assert_array_equal(support, _box_mask(rf, y, x), err_msg=f"unit {(y, x)}")


def test_receptive_field_by_hand_for_lenet(models):
    # conv1: 5x5, stride 2, pad 2 -> size 5, jump 2, start -2; conv2 (same geometry) on top:
    # size 5 + (5 - 1) * 2 = 13, jump 4, start -2 - 2 * 2 = -6
    rf1 = RF.receptive_field(models["lenet_dlg10"], "act1")
    assert (rf1.size, rf1.jump, rf1.start) == ((5, 5), (2, 2), (-2, -2))
    rf2 = RF.receptive_field(models["lenet_dlg10"], "conv2")
    assert (rf2.size, rf2.jump, rf2.start) == ((13, 13), (4, 4), (-6, -6))
    assert rf2.box(1, 2, (32, 32)) == (0, 11, 2, 15)


@pytest.mark.parametrize("dilation", [1, 2])
def test_receptive_field_of_same_padding_pooling_pad_and_dilation(dilation):
    """A synthetic graph with auto_pad SAME_UPPER/LOWER, average and max pooling with
    asymmetric pads, an explicit Pad and a last conv (dilated or not): for units whose field
    lies inside the image, the graph's field is exactly the gradient's support; at the border
    the clipped field is an upper bound (padding in intermediate layers can hide border pixels
    from a unit, and a dilated kernel can skip them), so there the support is a subset."""
    rng = np.random.default_rng(1)
    inits = {"w1": rng.standard_normal((6, 3, 4, 3)).astype(np.float32),
             "w2": rng.standard_normal((5, 6, 3, 3)).astype(np.float32),
             "pads": np.array([0, 0, 2, 1, 0, 0, 0, 3], np.int64)}
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], strides=[2, 1],
                         auto_pad="SAME_UPPER"),
        helper.make_node("AveragePool", ["c1"], ["a1"], kernel_shape=[3, 2], strides=[1, 1],
                         pads=[1, 0, 1, 1]),
        helper.make_node("MaxPool", ["a1"], ["m1"], kernel_shape=[2, 2], strides=[2, 2],
                         auto_pad="SAME_LOWER"),
        helper.make_node("Pad", ["m1", "pads"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], dilations=[dilation, 1],
                         pads=[1, 0, 1, 2]),
        helper.make_node("Tanh", ["c2"], ["out"]),
    ]
    proto = make_model(nodes, {"input": np.zeros((1, 3, 48, 40), np.float32)}, ["out"], inits)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"  # any batch size
    model = onnx_to_tf.load(proto)
    images = rng.uniform(0, 1, (16, 3, 48, 40)).astype(np.float32)  # max-pool: many argmaxes
    rf = RF.receptive_field(model, "out")
    assert rf.jump == (4, 2) and rf.size[0] == 4 + 2 * 2 + 1 * 2 + (3 - 1) * dilation * 4
    h, w = np.asarray(model(images[:1], compiled=False)).shape[2:]
    inside = 0
    for y in (0, 1, 5, h // 2, h - 3, h - 1):
        for x in (0, 2, 5, w // 2, w - 5, w - 1):
            support = RF.gradient_support(model, "out", (y, x), images)
            box = _box_mask(rf, y, x, (48, 40))
            assert not np.any(support & ~box), f"unit {(y, x)} sees outside its field"
            if rf.box(y, x) == rf.box(y, x, (48, 40)):  # the field lies inside the image
                inside += 1
                np.testing.assert_array_equal(support, box, err_msg=f"unit {(y, x)}")
    assert inside >= 9


def test_receptive_field_through_flatten_is_refused(models):
    with pytest.raises(VisualizationError, match="Flatten"):
        RF.receptive_field(models["lenet_dlg10"], "flatten")


# -- maximally activating patches -----------------------------------------------------------
def _brute_top(model, pixels, layer, channel, k, one_per_image):
    x = imgs.normalize(pixels, *imgs.preprocessing_of(model))
    act = np.asarray(model(x, taps=[layer], compiled=False)[layer])[:, channel]
    n, h, w = act.shape
    if one_per_image:
        flat = act.reshape(n, -1)
        pos = flat.argmax(axis=1)
        vals, img = flat[np.arange(n), pos], np.arange(n)
    else:
        vals = act.ravel()
        img, pos = np.divmod(np.arange(vals.size), h * w)
    order = np.lexsort((pos, img, -vals))[:k]
    return vals[order], img[order], np.stack(np.divmod(pos[order], w), axis=1)


def _check_crops(found, pixels, pad_value):
    rf = found.field
    for j, (i, (y, x)) in enumerate(zip(found.indices, found.positions)):
        fy0, fy1, fx0, fx1 = rf.box(y, x)  # the full field, possibly beyond the border
        y0, y1, x0, x1 = found.boxes[j]
        assert (y0, y1, x0, x1) == rf.box(y, x, pixels.shape[2:])
        patch = found.patches[j]
        assert patch.shape == (3, fy1 - fy0, fx1 - fx0)
        inside = patch[:, y0 - fy0: y1 - fy0, x0 - fx0: x1 - fx0]
        np.testing.assert_array_equal(inside, pixels[i][:, y0:y1, x0:x1])
        outside = np.ones(patch.shape[1:], bool)
        outside[y0 - fy0: y1 - fy0, x0 - fx0: x1 - fx0] = False
        assert np.all(patch[:, outside] == pad_value)


@pytest.mark.parametrize("one_per_image", [True, False])
def test_top_k_are_the_k_largest_and_the_patches_are_crops(models, cifar, one_per_image):
    model, pixels = models["resnet20_cifar"], cifar[0]
    cfg = P.PatchesConfig(k=7, batch_size=20, pad_value=0.25, one_per_image=one_per_image,
                          progress=False)
    found = P.top_patches(model, "layer2", 5, "cifar10", cfg, n=48)
    vals, img, pos = _brute_top(model, pixels, "layer2", 5, 7, one_per_image)
    np.testing.assert_allclose(found.values, vals, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(found.indices, img)
    np.testing.assert_array_equal(found.positions, pos)
    assert np.all(np.diff(found.values) <= 0) and found.images_scanned == 48
    if one_per_image:
        assert len(set(found.indices.tolist())) == 7
    assert found.field.size == (37, 37) and found.patches.shape == (7, 3, 37, 37)
    assert found.sources[found.indices[0]] == f"cifar10-test[{found.indices[0]}]"
    _check_crops(found, pixels, 0.25)


def _write_png(path, chw):
    from PIL import Image

    Image.fromarray((chw.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(path)


def test_folder_scan_skips_and_counts_an_unreadable_file(models, cifar, tmp_path):
    for i in range(5):
        _write_png(tmp_path / f"img{i}.png", cifar[0][i])
    big = model_zoo.data.image("astronaut", size=64, normalize=False)[0][:, :, 8:56]
    _write_png(tmp_path / "photo.JPG", big)  # 64x48, resized to 32x32, any case of suffix
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    (tmp_path / "notes.txt").write_text("not a photo")
    model = models["keras_cnn"]
    cfg = P.PatchesConfig(k=3, batch_size=3, one_per_image=False, progress=False)
    with pytest.warns(UserWarning, match=r"skipped 1 of 7 files .*broken\.jpg"):
        found = P.top_patches(model, "relu2", 3, tmp_path, cfg)
    assert [f for f, _ in found.skipped] == ["broken.jpg"] and found.images_scanned == 6
    assert "skipped 1 of 7" in found.message and "notes.txt" not in found.sources
    readable = [s for s in found.sources if s != "broken.jpg"]
    pixels = np.stack([P.read_photo(tmp_path / s, (32, 32)) for s in readable])
    np.testing.assert_allclose(pixels[:5], cifar[0][:5], atol=0.5 / 255 + 1e-6)
    vals, img, pos = _brute_top(model, pixels, "relu2", 3, 3, False)
    np.testing.assert_allclose(found.values, vals, rtol=1e-5, atol=1e-6)
    assert [found.sources[i] for i in found.indices] == [readable[i] for i in img]
    by_source = np.zeros((len(found.sources), 3, 32, 32), np.float32)
    for s, px in zip(readable, pixels):
        by_source[found.sources.index(s)] = px
    _check_crops(found, by_source, 0.0)


def test_folder_errors(models, tmp_path):
    model, cfg = models["keras_cnn"], P.PatchesConfig(k=1, progress=False)
    with pytest.raises(VisualizationError, match="no such folder"):
        P.top_patches(model, "relu2", 0, tmp_path / "missing", cfg)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(VisualizationError, match=r"holds no photos \(.jpg, .jpeg, .png"):
        P.top_patches(model, "relu2", 0, tmp_path / "empty", cfg)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    (bad / "b.jpg").write_bytes(b"")
    with pytest.raises(VisualizationError, match="none of the 2 photos .* could be read"):
        P.top_patches(model, "relu2", 0, bad, cfg)
    with pytest.raises(VisualizationError, match="is a file, not a folder"):
        P.top_patches(model, "relu2", 0, bad / "a.png", cfg)


def test_ctrl_c_keeps_the_top_k_found_so_far(models, cifar):
    def interrupt(batch, scanned):
        if batch == 2:
            raise KeyboardInterrupt

    model = models["lenet_dlg10"]
    cfg = P.PatchesConfig(k=4, batch_size=10, progress=False)
    found = P.top_patches(model, "act2", 1, cifar[0], cfg, callback=interrupt)
    assert found.interrupted and found.images_scanned == 20 and "interrupted" in found.message
    vals, img, _ = _brute_top(model, cifar[0][:20], "act2", 1, 4, True)
    np.testing.assert_allclose(found.values, vals, rtol=1e-5)
    np.testing.assert_array_equal(found.indices, img)
    stopped = P.top_patches(model, "act2", 1, cifar[0], cfg, callback=lambda b, s: True)
    assert stopped.images_scanned == 10 and not stopped.interrupted
    assert "stopped by the callback" in stopped.message


@pytest.mark.parametrize("kwargs, match", [
    ({"layer": "conv9"}, r"no tensor or alias named 'conv9'"),
    ({"channel": 32}, r"channel 32 is out of range for layer 'conv2', which has 32 channels: "
                      r"use 0 to 31"),
    ({"channel": -1}, "use 0 to 31"),
    ({"k": 0}, r"k must be an integer >= 1"),
    ({"k": 11}, r"k=11 is larger than the dataset: 10 images \(one per image\)"),
    ({"layer": "gap"}, r"not a feature map \(N, C, H, W\)"),
    ({"source": np.zeros((2, 3, 48, 48), np.float32)}, "takes 32x32 images"),
])
def test_patch_scan_bad_input(models, cifar, kwargs, match):
    args = {"layer": "conv2", "channel": 0, "k": 2, "source": cifar[0][:10]}
    args.update(kwargs)
    cfg = P.PatchesConfig(k=args.pop("k"), progress=False)
    with pytest.raises(VisualizationError, match=match):
        P.top_patches(models["keras_cnn"], args["layer"], args["channel"], args["source"], cfg)


# -- neighbours and embeddings --------------------------------------------------------------
def test_features_flatten_or_pool(models, cifar):
    model, x = models["resnet20_cifar"], cifar[0][:6]
    flat = E.features(model, x, "layer3", batch_size=4)
    assert flat.shape == (6, 64 * 8 * 8)
    avg = E.features(model, x, "layer3", pooling="avg")
    np.testing.assert_allclose(avg, flat.reshape(6, 64, 64).mean(-1), rtol=1e-5, atol=1e-6)
    mx = E.features(model, x, "layer3", pooling="max")
    np.testing.assert_allclose(mx, flat.reshape(6, 64, 64).max(-1), rtol=1e-5, atol=1e-6)
    with pytest.raises(VisualizationError, match="needs a feature map"):
        E.features(model, x, "output", pooling="avg")


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_pixel_neighbours_start_with_the_image_itself(cifar, metric):
    pool = cifar[0][:30]
    idx, dist = E.nearest_neighbours(pool[[4, 0, 17]], pool, 5, "pixel", metric=metric)
    np.testing.assert_array_equal(idx[:, 0], [4, 0, 17])
    np.testing.assert_allclose(dist[:, 0], 0, atol=1e-7)
    q, p = (a.reshape(len(a), -1).astype(np.float64) for a in (pool[[4, 0, 17]], pool))
    if metric == "l2":
        brute = np.linalg.norm(q[:, None] - p[None], axis=-1)
    else:
        brute = 1 - (q @ p.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(p, axis=1))
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :5], atol=1e-9)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1, kind="stable")[:, :5])


def test_feature_neighbours_with_the_model(models, cifar):
    model, pool = models["resnet20_cifar"], cifar[0][:30]
    idx, dist = E.nearest_neighbours(pool[[3, 9]], pool, 4, "feature", model=model,
                                     layer="avgpool")
    np.testing.assert_array_equal(idx[:, 0], [3, 9])
    assert np.all(dist[:, 0] < 1e-3 * dist[:, 1])
    f = E.features(model, pool, "avgpool")
    again, _ = E.nearest_neighbours(f[[3, 9]], f, 4, "feature")  # vectors: used as given
    np.testing.assert_array_equal(again, idx)


@pytest.mark.parametrize("call, match", [
    (lambda p: E.nearest_neighbours(p[:1], p, 0, "pixel"), "k must be an integer from 1 to"),
    (lambda p: E.nearest_neighbours(p[:1], p, 11, "pixel"), "pool size 10"),
    (lambda p: E.nearest_neighbours(p[:1], p, 2, "latent"), "space must be one of"),
    (lambda p: E.nearest_neighbours(p[:1], p, 2, "pixel", metric="l1"), "metric must be"),
    (lambda p: E.nearest_neighbours(p[:1], p, 2, "feature"), "needs model= and layer="),
    (lambda p: E.nearest_neighbours(p[:1, :, :16], p, 2, "pixel"), "same space"),
    (lambda p: E.embed_2d(p.reshape(10, -1), "umap"), "method must be one of"),
    (lambda p: E.embed_2d(p[:2].reshape(2, -1), "pca"), "at least 3 points"),
])
def test_neighbour_and_embedding_bad_input(cifar, call, match):
    with pytest.raises(VisualizationError, match=match):
        call(cifar[0][:10])


def test_pca_and_tsne_give_finite_2d_points(models, cifar):
    f = E.features(models["resnet20_cifar"], cifar[0][:30], "avgpool")
    pca = E.embed_2d(f, "pca")
    assert pca.shape == (30, 2) and np.all(np.isfinite(pca))
    centred = f - f.mean(0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(pca), np.abs(centred @ top.T), rtol=1e-4, atol=1e-4)
    with pytest.warns(UserWarning, match="perplexity 30 is too large for 30 points"):
        tsne = E.embed_2d(f, "tsne", seed=3)
    assert tsne.shape == (30, 2) and np.all(np.isfinite(tsne)) and tsne.std() > 0
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(E.embed_2d(f, "tsne", seed=3), tsne)


# -- pictures -------------------------------------------------------------------------------
def test_every_drawing_writes_a_png(models, cifar, tmp_path):
    from PIL import Image

    model, x = models["resnet20_cifar"], cifar[0][:12]
    F.draw_filters(tmp_path / "first.png", F.first_layer_filters(model), title="conv1")
    F.draw_filters(tmp_path / "deep.png", F.layer_filters(model, "layer1.0.conv1"),
                   max_filters=8)
    F.draw_activations(tmp_path / "act.png", F.activations(model, x[0], "layer1"),
                       max_channels=6, image=x[0])
    found = P.top_patches(model, "layer1", 2, x, P.PatchesConfig(k=4, progress=False))
    P.draw_patches(tmp_path / "patches.png", found)
    pix = E.nearest_neighbours(x[:2], x, 3, "pixel").indices
    feat = E.nearest_neighbours(x[:2], x, 3, "feature", model=model, layer="avgpool").indices
    E.draw_neighbours(tmp_path / "nn.png", x[:2], x, pix, feat)
    E.draw_embedding(tmp_path / "map.png", E.embed_2d(x.reshape(12, -1), "pca"), x,
                     labels=cifar[1][:12], class_names=model_zoo.data.cifar10_class_names())
    for name in ("first", "deep", "act", "patches", "nn", "map"):
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size[0] > 100 and im.size[1] > 100, name
    with pytest.raises(VisualizationError, match=r"\(O, kh, kw, 3\) RGB tiles"):
        F.draw_filters(tmp_path / "x.png", np.zeros((2, 3, 3, 3, 3)))
