"""The imported model as a research tool: variables, taps, BatchNorm layers, first- and
second-order gradients against PyTorch (onnx2torch), and the error paths."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tensorflow as tf
import torch
from onnx import helper, numpy_helper
from onnx_builders import make_model

import model_zoo
from converters import onnx_to_tf, onnx_to_torch
from converters.crosscheck import ort_session
from converters.onnx_to_tf import (
    ModelInputError,
    OnnxImportError,
    UnknownTapError,
    UnsupportedOpError,
    supported_ops,
)


@pytest.fixture(scope="module")
def cifar_batch():
    x, y = model_zoo.data.cifar10("test", n=4)
    return x.astype(np.float32), y


# -- variables and structure -------------------------------------------------------------
def test_float_initializers_become_variables_named_after_them(resnet20, resnet20_path):
    proto = onnx.load(str(resnet20_path))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    floats = {k for k, v in inits.items() if v.dtype.kind == "f"}
    assert set(resnet20.onnx_variables) == floats
    assert len(resnet20.trainable_variables) == len(floats)
    for name, arr in inits.items():
        if name in floats:
            np.testing.assert_array_equal(
                resnet20.to_onnx_layout(name, resnet20.onnx_variables[name]), arr
            )
    # conv kernels are stored the way TF convolves (HWIO), still named after the initializer
    assert tuple(resnet20.onnx_variables["conv1.weight"].shape) == (3, 3, 3, 16)


def test_bn_layers_expose_inputs_and_statistics(resnet20, resnet20_path):
    proto = onnx.load(str(resnet20_path))
    bn_nodes = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    assert len(resnet20.bn_layers) == len(bn_nodes) == 19
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for layer, node in zip(resnet20.bn_layers, bn_nodes):
        assert layer.input == node.input[0] and layer.input in resnet20.layer_names
        np.testing.assert_array_equal(layer.running_mean.numpy(), inits[node.input[3]])
        np.testing.assert_array_equal(layer.running_var.numpy(), inits[node.input[4]])
        assert layer.epsilon == pytest.approx(1e-5)


def test_taps_by_alias_and_raw_name_match_onnxruntime(
    resnet20, resnet20_path, cifar_batch, tmp_path
):
    x, _ = cifar_batch
    raw = resnet20.aliases["layer2"]
    taps = resnet20(x, taps=["layer2", "conv1", raw])
    assert taps["layer2"].shape == (4, 32, 16, 16)
    np.testing.assert_array_equal(taps["layer2"], taps[raw])
    # onnxruntime's value of the same intermediate tensor, exposed as a graph output
    proto = onnx.load(str(resnet20_path))
    proto.graph.output.append(helper.make_tensor_value_info(raw, onnx.TensorProto.FLOAT, None))
    path = tmp_path / "with_tap.onnx"
    onnx.save(proto, str(path))
    ref = ort_session(path).run([raw], {"input": x})[0]
    np.testing.assert_allclose(taps["layer2"], ref, rtol=1e-4, atol=1e-5)
    nhwc = resnet20(x, taps=["layer2"], layout="NHWC")["layer2"]
    # another graph (other outputs), so TF may fuse differently: equal up to float rounding
    np.testing.assert_allclose(
        nhwc, np.transpose(taps["layer2"], (0, 2, 3, 1)), rtol=1e-5, atol=1e-6
    )


def test_unknown_tap_lists_valid_names(resnet20, cifar_batch):
    with pytest.raises(UnknownTapError) as info:
        resnet20(cifar_batch[0], taps=["layer9"])
    msg = str(info.value)
    assert "layer9" in msg and "layer1" in msg and "model.layer_names" in msg


def test_gradient_with_respect_to_a_tap_in_every_layout(resnet20, cifar_batch):
    """Run uncompiled (inside the caller's own tf.function, as FullGrad does), a returned tap is
    the tensor the rest of the graph reads, whatever layout was asked for, so d output / d tap
    exists and is the same gradient in every layout (a tensor held in ONNX order, as after a
    channel shuffle, is covered by FullGrad's test_completeness_through_a_channel_shuffle)."""
    x = tf.constant(cifar_batch[0][:2])
    grads = {}
    for layout in ("ONNX", "NCHW", "NHWC"):
        with tf.GradientTape() as tape:
            values = resnet20(x, taps=["layer2", "output"], layout=layout, compiled=False)
            score = tf.reduce_sum(values["output"][:, 3])
        g = tape.gradient(score, values["layer2"])
        assert g is not None, layout
        grads[layout] = g.numpy() if layout != "NHWC" else np.moveaxis(g.numpy(), -1, 1)
    np.testing.assert_allclose(grads["NCHW"], grads["ONNX"], rtol=0, atol=0)
    np.testing.assert_allclose(grads["NHWC"], grads["ONNX"], rtol=1e-6,
                               atol=1e-6 * np.abs(grads["ONNX"]).max())
    assert np.abs(grads["ONNX"]).max() > 0


def test_eager_and_compiled_agree(resnet20, cifar_batch):
    x, _ = cifar_batch
    np.testing.assert_allclose(resnet20(x), resnet20(x, compiled=False), rtol=1e-5, atol=1e-5)


def test_frozen_forward_matches_onnxruntime_and_is_a_snapshot(resnet20_path, cifar_batch):
    x, _ = cifar_batch
    model = onnx_to_tf.load(resnet20_path)
    frozen = model.freeze(x.shape, taps=["output", "layer2"])
    ref = ort_session(resnet20_path).run(None, {"input": x})[0]
    got = frozen(x)
    np.testing.assert_allclose(got["output"], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(got["layer2"], model(x, taps=["layer2"])["layer2"], atol=1e-5)
    # a snapshot: changing a variable afterwards changes model(x) but not the frozen forward
    fc = model.onnx_variables["linear.bias"]
    fc.assign_add(tf.ones_like(fc))
    np.testing.assert_allclose(frozen(x)["output"], got["output"], atol=1e-6)
    assert np.abs(model(x).numpy() - got["output"].numpy()).min() > 0.5
    with pytest.raises(ModelInputError, match="built for input shape"):
        frozen(x[:2])
    with pytest.raises(ModelInputError, match="channels-last"):
        model.freeze((1, 32, 32, 3))


def test_train_mode_batchnorm_matches_pytorch(resnet20_path, cifar_batch):
    x, _ = cifar_batch
    model = onnx_to_tf.load(resnet20_path)
    net = onnx_to_torch.load(resnet20_path).train()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    got = model(x, bn_mode="train").numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    # running statistics are not touched by a train-mode call
    assert not np.allclose(got, model(x).numpy(), atol=1e-3)


# -- gradients against PyTorch -----------------------------------------------------------
def _torch_net(path, dtype):
    net = onnx_to_torch.load(path)
    return net.double() if dtype == "float64" else net


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_weight_gradients_match_pytorch(resnet20_path, cifar_batch, dtype, tol):
    x, y = cifar_batch
    np_dtype = np.float64 if dtype == "float64" else np.float32
    model = onnx_to_tf.load(resnet20_path, dtype=dtype)
    with tf.GradientTape() as tape:
        logits = model(x.astype(np_dtype))
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    names = list(model.onnx_variables)
    grads = tape.gradient(loss, [model.onnx_variables[n] for n in names])

    net = _torch_net(resnet20_path, dtype)
    params = onnx_to_torch.initializer_parameters(net, resnet20_path)
    out = net(torch.from_numpy(x.astype(np_dtype)))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).backward()
    compared = 0
    for name, g in zip(names, grads):
        if name not in params:  # running statistics have no gradient
            continue
        ref = params[name].grad.numpy()
        got = model.to_onnx_layout(name, g).numpy()
        np.testing.assert_allclose(
            got, ref, rtol=0, atol=tol * max(np.abs(ref).max(), 1e-12), err_msg=name
        )
        compared += 1
    assert compared == 59  # 19 conv kernels + 19 BN (scale, bias) + linear weight and bias


def _gradient_matching_tf(model, x, y, target, compiled_outer):
    weights = [model.onnx_variables[n] for n in target]

    def loss_fn(x):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                logits = model(x)
                loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                )
            grads = inner.gradient(loss, weights)
            match = tf.add_n(
                [
                    tf.reduce_sum((model.to_onnx_layout(n, g) - t) ** 2)
                    for n, g, t in zip(target, grads, target.values())
                ]
            )
        return match, outer.gradient(match, x)

    fn = tf.function(loss_fn) if compiled_outer else loss_fn
    match, gx = fn(tf.constant(x))
    return float(match), gx.numpy()


def _gradient_matching_torch(net, params, x, y, target):
    xt = torch.from_numpy(x).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(xt), torch.from_numpy(y), reduction="sum")
    grads = torch.autograd.grad(loss, [params[n] for n in target], create_graph=True)
    match = sum(((g - torch.from_numpy(t)) ** 2).sum() for g, t in zip(grads, target.values()))
    (gx,) = torch.autograd.grad(match, xt)
    return float(match), gx.numpy()


@pytest.mark.parametrize("name", ["lenet_dlg10", "resnet20_cifar"])
@pytest.mark.parametrize("compiled_outer", [False, True])
def test_second_order_gradient_matches_pytorch(name, compiled_outer, cifar_batch):
    """d/dx ||dL/dW(x) - g*||^2, the gradient-inversion objective, in float64 (exact)."""
    path = model_zoo.load(name)
    x, y = cifar_batch
    x = x[:2].astype(np.float64)
    y = y[:2]
    model = onnx_to_tf.load(path, dtype="float64")
    net = _torch_net(path, "float64")
    params = onnx_to_torch.initializer_parameters(net, path)
    rng = np.random.default_rng(0)
    target = {n: rng.standard_normal(tuple(p.shape)) * 1e-2 for n, p in params.items()}
    m_tf, g_tf = _gradient_matching_tf(model, x, y, target, compiled_outer)
    m_t, g_t = _gradient_matching_torch(net, params, x, y, target)
    assert m_tf == pytest.approx(m_t, rel=1e-10)
    # float64 rounding, amplified by the cancellation in (g - g*): ~1e-9 of max |grad| seen
    np.testing.assert_allclose(g_tf, g_t, rtol=0, atol=1e-7 * np.abs(g_t).max())


# -- error paths -------------------------------------------------------------------------
def _tiny(opset=17, op="Relu", **attrs):
    x = np.zeros((1, 3, 4, 4), np.float32)
    return make_model(
        [helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)], {"x": x}, ["y"], opset=opset
    )


def test_unsupported_op_names_op_node_opset_and_supported_list():
    model = _tiny(op="Hardmax")
    with pytest.raises(UnsupportedOpError) as info:
        onnx_to_tf.load(model)
    msg = str(info.value)
    assert "Hardmax" in msg and "the_node" in msg and "opset 17" in msg
    assert "Conv" in msg and "BatchNormalization" in msg  # the supported list
    assert "Hardmax" not in supported_ops()


def test_custom_domain_op_is_refused():
    model = _tiny()
    model.graph.node[0].domain = "com.microsoft"
    with pytest.raises(UnsupportedOpError, match="com.microsoft"):
        onnx_to_tf.load(model)


def test_opset_out_of_range_is_refused_with_a_fix():
    with pytest.raises(OnnxImportError, match="opsets 7 to 18"):
        onnx_to_tf.load(_tiny(opset=21))


def test_truncated_file_is_refused(resnet20_path, tmp_path):
    data = resnet20_path.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(OnnxImportError, match="truncated"):
        onnx_to_tf.load(bad)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(OnnxImportError, match="no ONNX file"):
        onnx_to_tf.load(tmp_path / "nope.onnx")


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    w = np.ones((4, 3, 1, 1), np.float32)
    x = np.zeros((1, 3, 4, 4), np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], {"x": x}, ["y"], {"w": w})
    inside = tmp_path / "model"
    inside.mkdir()
    onnx.save(
        model,
        str(inside / "ok.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    np.testing.assert_allclose(onnx_to_tf.load(inside / "ok.onnx")(x), np.zeros((1, 4, 4, 4)))
    proto = onnx.load(str(inside / "ok.onnx"), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    (tmp_path / "secret.bin").write_bytes((inside / "weights.bin").read_bytes())
    onnx.save(proto, str(inside / "escape.onnx"))
    with pytest.raises(OnnxImportError, match="outside the model's folder"):
        onnx_to_tf.load(inside / "escape.onnx")


def test_wrong_input_rank_channels_and_dtype_get_clear_messages(resnet20):
    with pytest.raises(ModelInputError, match=r"4-D .*Add a batch axis"):
        resnet20(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ModelInputError, match=r"axis 1 is 1, expected 3"):
        resnet20(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ModelInputError, match="channels-last"):
        resnet20(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ModelInputError, match="uint8"):
        resnet20(np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="layout"):
        resnet20(np.zeros((2, 3, 32, 32), np.float32), layout="CHWN")


def test_large_weights_are_written_in_slices_exactly():
    from converters.onnx_to_tf.building import to_variable

    arr = np.random.default_rng(0).standard_normal((37, 5, 3), dtype=np.float32)
    var = to_variable(arr, tf.float32, "w", chunk_bytes=4 * 5 * 3 * 4)  # 4 rows per slice
    np.testing.assert_array_equal(var.numpy(), arr)
    var64 = to_variable(arr, tf.float64, "w64", chunk_bytes=100)
    assert var64.dtype == tf.float64
    np.testing.assert_array_equal(var64.numpy(), arr.astype(np.float64))


def test_mmap_weights_reader_sees_the_same_model_as_onnx_load(resnet20_path):
    from converters.onnx_to_tf.mmap_weights import read_lean

    full = onnx.load(str(resnet20_path))
    skeleton, raw = read_lean(resnet20_path)
    try:
        assert [n.SerializeToString() for n in skeleton.graph.node] == [
            n.SerializeToString() for n in full.graph.node
        ]
        assert len(raw.spans) == len(full.graph.initializer)
        for k, (a, b) in enumerate(zip(skeleton.graph.initializer, full.graph.initializer)):
            assert a.name == b.name and not a.raw_data
            np.testing.assert_array_equal(raw.array(k, a), numpy_helper.to_array(b))
    finally:
        raw.close()
