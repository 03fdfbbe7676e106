"""The self-training loop: rounds of translate -> pool -> train -> evaluate, with guards.

The top layer: it drives `graphs` (translation), `training` (OIELLM) and `eval` (scores).
Run it as ``python -m self_training --config FILE [key=value ...]``.
"""
