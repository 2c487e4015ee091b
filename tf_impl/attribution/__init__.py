"""Attribution: which input features a prediction is owed to, with one call shape throughout.

In the manner of Captum, every method is ``method(model, inputs, target=None, baseline=None,
..., return_delta=False) -> attributions`` (``inputs`` is the model's normalised NCHW input;
``target`` defaults to the predicted class, or one int for all, or one per input;
``return_delta=True`` also returns the completeness gap where the method has one, and is
refused where it has none). Path methods evaluate at most ``batch_size`` path points per
forward pass, so memory stays bounded.

- :mod:`.gradients` -- backprop saliency (Simonyan et al. 2014) and guided backprop
  (Springenberg et al. 2015): one gradient, no baseline;
- :mod:`.occlusion` -- occlusion (Zeiler & Fergus 2014), as Captum's ``Occlusion``;
- :mod:`.integrated_gradients` -- Integrated Gradients (Sundararajan et al. 2017) with a choice
  of quadrature and the completeness gap;
- :mod:`.guided_ig` -- Guided Integrated Gradients (Kapishnikov et al. 2021);
- :mod:`.blur_ig` -- Blur IG (Xu et al. 2020);
- :mod:`.idgi` -- IDGI (Yang et al. 2023) on top of IG, Guided IG and Blur IG;
- :mod:`.fullgrad` -- FullGrad (Srinivas & Fleuret 2019): maps (N, H, W), no baseline;
- :mod:`.evaluation` -- insertion and deletion AUC.

:mod:`.common` holds the checks, the target scores and the batched target-score gradient
every method uses. The pixel-level front ends with maps, figures and a record of the
prediction (``tf_impl.visualization.saliency``: saliency, guided backprop, occlusion and the
GrabCut segmentation) call these.
"""
