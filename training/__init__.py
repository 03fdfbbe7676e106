"""OIELLM training: the text format and its parser, data building and packing, training
(``python -m training.train``) and batched inference (``training.infer.OIELLM``).

Importing this package (or ``mre.oiellm``, ``training.config``) needs no torch;
the modules that train or generate import torch and transformers inside their functions.
"""
