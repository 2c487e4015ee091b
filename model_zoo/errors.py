"""The one exception type of the model zoo."""

from __future__ import annotations


class ModelZooError(Exception):
    """Raised for anything the model zoo cannot do, with a message saying how to fix it.

    Example:
        >>> import model_zoo
        >>> try:
        ...     model_zoo.info("resnet9000")
        ... except model_zoo.ModelZooError as err:
        ...     print("resnet20_cifar" in str(err))
        True
    """
