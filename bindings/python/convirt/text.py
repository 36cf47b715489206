"""Tokenizer and report text utilities of convirt, bound from C++ (``convirt._C.text``).

The WordPiece tokenizer gives the ids Hugging Face's ``BertTokenizer`` gives on the same vocab.txt
and encodes batches to int64 tensors on several threads (the GIL is released)::

    from convirt.text import WordPieceTokenizer
    tok = WordPieceTokenizer.from_vocab_file("vocab.txt", max_length=128)
    batch = tok.encode_batch(["No pleural effusion.", "Heart size is normal."])
    batch["input_ids"].shape  # torch.Size([2, 128])

Report utilities (``extract_sections``, ``pretraining_text``, ``split_sentences``, ...) turn a
MIMIC-CXR style report into the sentences ConVIRT samples from.
"""
from __future__ import annotations

from ._C import text as _text

WordPieceTokenizer = _text.WordPieceTokenizer
basic_tokenize = _text.basic_tokenize
build_wordpiece_vocab = _text.build_wordpiece_vocab
save_vocab = _text.save_vocab
extract_sections = _text.extract_sections
pretraining_text = _text.pretraining_text
clean_whitespace = _text.clean_whitespace
count_tokens = _text.count_tokens
keep_for_pretraining = _text.keep_for_pretraining
is_valid_utf8 = _text.is_valid_utf8
split_sentences = _text.split_sentences
sample_sentence_index = _text.sample_sentence_index


class SentenceSampler:
    """One sentence per example per step, uniform, a pure function of (seed, example, step)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def sample(self, sentences: list[str], example: int, step: int) -> str:
        if not sentences:
            raise ValueError(f"SentenceSampler.sample: sentences must not be empty (example {example}, step {step})")
        return sentences[sample_sentence_index(len(sentences), self.seed, example, step)]


__all__ = [
    "WordPieceTokenizer",
    "basic_tokenize",
    "build_wordpiece_vocab",
    "save_vocab",
    "extract_sections",
    "pretraining_text",
    "clean_whitespace",
    "count_tokens",
    "keep_for_pretraining",
    "is_valid_utf8",
    "split_sentences",
    "sample_sentence_index",
    "SentenceSampler",
]
