"""mtlkit: multi-task-learning building blocks for PyTorch."""

from mtlkit._version import __version__

__all__ = ["__version__"]
