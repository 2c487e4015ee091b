import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def zoo_cache():
    """Persistent model-zoo cache for the whole session (model_zoo tests).

    Reuses ``$MODEL_ZOO_CACHE`` if set, else the default ``~/.cache/tf-model-inversion/
    model_zoo``, so exports and fetched weights survive between test runs.
    """
    from model_zoo.cache import resolve_cache_dir

    path = resolve_cache_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_ZOO_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def zoo_model():
    """``zoo_model(name)``: the zoo's model ``name`` imported into TensorFlow once per session
    and shared. Do not change its weights or contract: load a copy of your own for that."""
    import model_zoo
    from converters import onnx_to_tf

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = onnx_to_tf.load(model_zoo.load(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def resnet20_path():
    """The trained CIFAR ResNet-20's ONNX file."""
    import model_zoo

    return model_zoo.load("resnet20_cifar")


@pytest.fixture(scope="session")
def resnet20(zoo_model):
    """The trained CIFAR ResNet-20, imported once per session (shared: do not change it)."""
    return zoo_model("resnet20_cifar")


@pytest.fixture(scope="session")
def lenet(zoo_model):
    """DLG's LeNet (sigmoid, 100 classes), imported once per session (shared)."""
    return zoo_model("lenet_dlg")


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch's OpenMP threads and TensorFlow's thread pools spin against each other on a
    small machine (a VGG step takes 10x longer); one PyTorch thread while a module runs avoids
    that. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# torchvision pulls in triton, which crashes beside TensorFlow: see converters/triton_guard.py
from converters.triton_guard import guard_triton  # noqa: E402

guard_triton()
