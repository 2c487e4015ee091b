"""The demo: every zoo model through our ONNX->TF importer, onnxruntime and PyTorch, then the
techniques on the same page.

Command line::

    python -m demo --out runs/demo                                # all zoo models
    python -m demo --out runs/demo --models lenet_dlg10,resnet20_cifar --quick

Runs ``converters.crosscheck.crosscheck`` per model on one real input (CIFAR-10 test image
for 32x32 models, a bundled photo otherwise; ``--quick``: 128 not 224 for dynamic H/W),
prints the table and TF vs onnxruntime top-1, draws |d score / d input| from TF beside
PyTorch's, and writes ``index.html`` (self-contained), ``parity.json``, ``parity.md`` and
``images/*.png`` under ``--out``. Then the techniques: feature inversion of VGG16 features at
three depths (``feature_inversion/``, 224x224, 200 steps; ``--quick``: 64x64, 10 steps),
gradient inversion of CIFAR images (``gradient_inversion/``), the visualization gallery and
attribution, each through ``python -m tf_impl``, shown on the same page. Exit status 0 if every
model passes and every technique ran, 1 if not, 2 on bad arguments.

Modules: ``parity`` (one model in three runtimes, its figure and table row), ``techniques``
(the technique sections, each a list of command lines), ``page`` (the HTML, JSON and markdown
outputs), ``run`` (the command line). The demo sits downstream of everything: it imports
``model_zoo``, ``converters`` and ``tf_impl``, and nothing imports it.
"""
