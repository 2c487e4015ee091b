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

# PyTorch (and torchvision, which pulls in triton) before TensorFlow: see converters/_compat.py
import torch  # noqa: E402,F401
import torchvision  # noqa: E402,F401
