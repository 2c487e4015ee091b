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


# torchvision pulls in triton, which crashes beside TensorFlow: see converters/_compat.py
from converters._compat import guard_triton  # noqa: E402

guard_triton()
