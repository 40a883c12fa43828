"""tinytorch: a small numpy package of sparse and compressed neural networks.

Every module except this file is written by `course build` from `modules/`;
edit the module source, never the generated file.
"""
__version__ = "0.1.0"
