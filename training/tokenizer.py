"""A byte-level BPE tokenizer trained on the spot, for models built from scratch.

Byte-level BPE never meets an unknown character, so Japanese and Chinese texts (and any
script) encode and decode back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Any:
    """A ``PreTrainedTokenizerFast`` (byte-level BPE) trained on ``texts``.

    It adds no BOS, pads with ``<|pad|>`` and ends generations with ``<|endoftext|>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
    )
