"""landscape: a measurement-first loss-landscape toolkit for PyTorch."""

__version__ = "0.1.0"
