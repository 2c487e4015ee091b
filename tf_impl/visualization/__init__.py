"""CNN visualization: what the network sees, which pixels matter, images made by gradient ascent.

One module per family, each returning arrays (and a :class:`tf_impl.result.Result` for the
optimisations) and offering a ``draw_*`` function for the picture:

- :mod:`.filters` -- first-layer filters as RGB tiles, deeper filters as grids, activation maps;
- :mod:`.patches` -- maximally activating dataset patches, cropped to the receptive field;
- :mod:`.receptive_field` -- a layer's receptive field from the ONNX graph, and measured;
- :mod:`.embedding` -- nearest neighbours in feature vs pixel space, PCA / t-SNE maps;
- :mod:`.saliency` -- backprop saliency (Simonyan et al.), guided backprop, occlusion,
  saliency-seeded GrabCut segmentation;
- :mod:`.class_viz` -- class model visualization;
- :mod:`.adversarial` -- FGSM and iterative (PGD) adversarial examples;
- :mod:`.deepdream` -- DeepDream with octaves and random shifts;
- :mod:`.style` -- Gram-matrix texture synthesis and neural style transfer;
- :mod:`.fast_style` -- a feed-forward style network with conditional instance norm.

:mod:`.checks` validates the class, layer and channel indices every method takes, and
:mod:`.perceptual` holds the Gram matrix and the content/style losses the style modules share.
"""
