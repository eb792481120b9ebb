"""tuik8s: a small, real Kubernetes on one machine, driven from a terminal UI."""

__version__ = "0.1.0"
