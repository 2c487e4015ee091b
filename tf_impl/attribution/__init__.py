"""Attribution: which input features a prediction is owed to, with one call shape throughout.

In the manner of Captum, every method is ``method(model, inputs, target=None, baseline=None,
steps=..., batch_size=...) -> attributions`` with the inputs' shape (``inputs`` is the model's
normalised NCHW input; ``target`` defaults to the predicted class). Path methods evaluate at
most ``batch_size`` path points per forward pass, so memory stays bounded.

- :mod:`.integrated_gradients` -- Integrated Gradients (Sundararajan et al. 2017) with a choice
  of quadrature and the completeness gap;
- :mod:`.guided_ig` -- Guided Integrated Gradients (Kapishnikov et al. 2021);
- :mod:`.blur_ig` -- Blur IG (Xu et al. 2020);
- :mod:`.idgi` -- IDGI (Yang et al. 2023) on top of IG, Guided IG and Blur IG;
- :mod:`.fullgrad` -- FullGrad (Srinivas & Fleuret 2019);
- :mod:`.evaluation` -- insertion and deletion AUC.

:mod:`.common` holds the checks and the batched gradient evaluation they share.
"""
