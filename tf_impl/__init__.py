"""The techniques, in TensorFlow only: they drive ``tf.GradientTape`` against models imported
from ONNX with :func:`converters.onnx_to_tf.load`.

This package never imports torch, so a TensorFlow user can use it without PyTorch installed
(``tests/test_layout_rules.py`` checks that).

- :mod:`tf_impl.optimize` -- the one optimisation loop; :mod:`tf_impl.torch_optimizers` -- Adam,
  SGD and L-BFGS with PyTorch's update rules.
- :mod:`tf_impl.priors` -- composable loss terms (TV, alpha-norm, feature matching).
- :mod:`tf_impl.metrics` -- PSNR, SSIM, LPIPS.
- :mod:`tf_impl.feature_inversion` -- Mahendran & Vedaldi 2015.
- :mod:`tf_impl.gradient_inversion` -- DLG, iDLG, Inverting Gradients, GradInversion, label
  restoration.
- :mod:`tf_impl.visualization` -- filters, activations, top patches, embeddings, saliency,
  guided backprop, occlusion, class visualization, adversarial examples, DeepDream, texture
  synthesis, style transfer and fast style transfer.
- :mod:`tf_impl.attribution` -- Integrated Gradients, Guided IG, Blur IG, IDGI, FullGrad,
  insertion/deletion; :mod:`tf_impl.hdr_gan` -- HDR-GAN's tonemapper and hypersphere loss.
- :mod:`tf_impl.images`, :mod:`tf_impl.report`, :mod:`tf_impl.result` -- input checks,
  output files and figures, the result record; :mod:`tf_impl.cli` -- ``python -m tf_impl``.

"""
