"""Tools built on the codec library: the benchmark (``python -m codec bench``), the training of the
tuned encoder (``make train-encoder``) and measuring scripts. They import the library; the library
never imports them (tests/test_architecture.py). Only the CLI reaches them, lazily, for ``bench``.
"""
