"""Third-party-style ONNX victim models, built here deterministically, with their ground truth.

Real victim files do not come from our zoo: Keras exports take NHWC input and end in
Softmax, torchvision exports come from new and old exporters, Caffe conversions take BGR
pixels in 0..255 with the mean already subtracted and are full of no-op nodes. The builders
of this package make such files (random, seeded weights; nothing is downloaded) and return
``(onnx.ModelProto, Truth)``: ``Truth`` is what a user would have to know about the file, the
ground truth the project's model contract must infer or be told. None of these files carries
``model_zoo`` metadata.

Example:
    >>> from model_zoo import third_party as tp
    >>> proto, truth = tp.build("tv_squeezenet1_1_legacy", small=True)   # doctest: +SKIP
    >>> truth.output, truth.input_size                                    # doctest: +SKIP
    ('probabilities', (32, 32))
    >>> path = tp.save("keras_mobilenetv2", "/tmp/tp", small=True)       # doctest: +SKIP

Command: ``python -m model_zoo.third_party [--small] [--out DIR] [--parity] [NAME ...]``.

What a file's input means (``Truth``): the graph input, in ``layout``, holds
``(scale * pixel - mean) / std`` per channel, channels in ``channel_order``, with ``pixel`` in
[0, 1]; ``mean`` and ``std`` are listed in the model's own channel order and units.

Builders:

- ``keras_application``: ``keras.applications`` MobileNetV2 / ResNet50 / VGG16
  (``weights=None``, Softmax head) through ``converters.tf_to_onnx`` with NHWC input. BN
  statistics, BN gamma/beta and biases are drawn from a seeded generator (TensorFlow folds BN
  into the convolutions, so no BatchNormalization node survives). Smaller variants for tests:
  MobileNetV2 ``alpha``; ResNet50 ``width``/``blocks`` (Keras' own ResNet builder with its
  ``stack_residual_blocks_v1``); VGG16 ``width``/``fc_units`` (same layer names and ops as
  ``keras.applications.VGG16``, built layer by layer, since that function has no width knob).
  tf2onnx ran out of this machine's 23 GB converting the 138M-parameter VGG16 with its Dense
  kernels as constants, so models over 50M parameters are converted with their Dense kernels
  passed in as function inputs and turned back into initializers afterwards (same ops).
- ``torchvision_model``: ``torch.onnx.export(dynamo=False)``; modern = opset 17, dynamic batch,
  ``input``/``output`` names; ``legacy=True`` = opset 9, weights also listed as graph inputs
  (``keep_initializers_as_inputs``), torch's default tensor names (input ``input.1``; the
  output is numbered, or ``softmaxout_1`` after a spatial Softmax), an opset-7 Dropout (with
  its mask output) before the classifier, and optionally a 4-D head
  (``head="spatial_logits"``: (N, C, 1, 1) logits, SqueezeNet without its final Flatten,
  ResNet/DenseNet with the Linear as a 1x1 Conv; ``"spatial_softmax"``: then a Softmax over
  axis 1 of that 4-D tensor, as Caffe2-era SqueezeNet files end; the default for a legacy
  SqueezeNet). BatchNorm running statistics and affine parameters are seeded random.
- ``caffe_style``: a zoo model wrapped as a Caffe->ONNX conversion (NHWC, BGR, 0..255, mean
  subtracted by the user; channel swap and 1/(255 std) folded into the first convolution;
  no-op Casts and cancelling Transpose pairs after every 4-D node; a final Softmax).

Measured on the 2-core development machine (onnx2torch 1.5.15, onnxruntime 1.31, torch 2.14,
TF 2.21). build s = seconds for ``build(name, small=True)`` in a warm process (the first Keras
build of a process pays about 5 s more); full s = build seconds in ``python -m
model_zoo.third_party --parity`` (all 12 in 2 min 8 s, peak memory 10 GB, in the VGG16
build); onnx2torch = ``onnx2torch.convert`` succeeds; importer = ``converters.onnx_to_tf``
(eager) against onnxruntime on the file's own input layout, max|diff| / max|ref| on 2 SMALL
images (full size, 1 image: 1.3e-07 .. 7.8e-07 for every file).

======================== ============ ======= ======== ========== ======== ======= ========
name                     SMALL config build s MB       onnx2torch importer full s  full MB
======================== ============ ======= ======== ========== ======== ======= ========
keras_mobilenetv2        32px a=0.35  4.2     1.7      yes        1.7e-07  10.2    14.0
keras_resnet50           w=8 1-1-1-1  3.4     0.6      yes        1.2e-07  19.4    102.4
keras_vgg16              w=8 fc=64    2.6     1.0      yes        2.1e-07  34.1    553.4
tv_mobilenet_v3_small    32px w=0.5   1.3     1.7      yes        1.0e-06  1.7     10.3
tv_shufflenet_v2         x0_5 (x1_0)  1.8     1.6      yes        3.0e-07  0.7     9.3
tv_squeezenet1_1         32px         0.5     2.9      yes        8.4e-07  0.9     5.0
tv_densenet121           dense_small  0.6     0.1      yes        5.6e-07  6.7     32.4
tv_resnet50              resnet_small 0.8     14.2     yes        7.0e-07  3.5     102.5
tv_squeezenet1_1_legacy  32px         0.5     2.9      no (1)     2.2e-07  0.7     5.0
tv_resnet50_legacy       resnet_small 0.8     14.2     no (1)     9.1e-07  2.3     102.5
tv_densenet121_legacy    dense_small  0.8     0.1      no (1)     3.2e-07  6.4     32.5
caffe_resnet18           resnet20     0.1     1.1      yes        1.4e-06  1.0     46.9
======================== ============ ======= ======== ========== ======== ======= ========

(1) ``NotImplementedError: Converter is not implemented (OperationDescription(domain='',
operation_type='Dropout', version=7))``: onnx2torch registers Dropout converters for
versions 10, 12 and 13 only; the same files without that node convert. SMALL models have
10 classes and 32x32 inputs (resnet20_cifar: 32x32 CIFAR-10); full-size ones 1000 classes and
224x224 inputs.
"""

from __future__ import annotations

from .caffe import (  # noqa: F401
    caffe_input,
    caffe_parity,
    caffe_style,
)
from .catalogue import (  # noqa: F401
    BUILDERS,
    CATALOGUE,
    SMALL,
    Config,
    build,
    config,
    keras_torch_twins,
    load_truth,
    save,
    truth_path,
)
from .checks import (  # noqa: F401
    check,
    main,
)
from .keras_apps import (  # noqa: F401
    keras_application,
    keras_export,
    randomise_keras,
)
from .torchvision_models import (  # noqa: F401
    torch_export,
    torchvision_model,
)
from .truth import (  # noqa: F401
    CAFFE_MEAN_BGR,
    FORMAT,
    KERAS_CAFFE_MEAN_BGR,
    ORIGINS,
    OUTPUTS,
    TORCH_MEAN,
    TORCH_STD,
    Truth,
    data_input,
    drop_unused_initializers,
    expected_onnx2torch,
    height_width,
    onnx2torch_failure,
    param_count,
    set_batch_dim,
    sync_initializer_inputs,
    truth_contract,
    unique_name,
)
