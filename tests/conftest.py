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


# torchvision pulls in triton, which crashes beside TensorFlow: see converters/_compat.py
from converters._compat import guard_triton  # noqa: E402

guard_triton()
