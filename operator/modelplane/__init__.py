"""Modelplane: size, place and scale language-model serving on Kubernetes."""

__version__ = "0.1.0"
