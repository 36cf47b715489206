"""convirt.text against a transcription of Hugging Face's BertTokenizer (bert_reference.py).

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_text.py
"""
import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_reference  # noqa: E402

text = pytest.importorskip("convirt.text")

VOCAB = os.path.join(os.path.dirname(__file__), "..", "data", "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="module")
def vocab_path():
    assert os.path.exists(VOCAB), f"fixture missing: {VOCAB} (tests/data is part of the repository)"
    return VOCAB


# Characters that exercise every branch: ASCII, accents (precomposed and combining), CJK, kana,
# Hangul, Greek sigma, dotted I, controls, format characters, Unicode spaces, symbols, emoji.
ALPHABET = list("abcXYZ019 .,;:-'()[]#\t\n") + [
    "\u00e9", "\u00c5", "\u00df", "\u00f8", "\u0301", "\u0308", "\u0323", "\u5317", "\u4eac",
    "\u3053", "\u3093", "\ud55c", "\u03a3", "\u039f", "\u0130", "\x00", "\x07", "\x7f", "\u200b",
    "\u00ad", "\u00a0", "\u2028", "\u3000", "\u2192", "\u00b0", "\U0001F600", "\uff21", "\u212b",
    "\ufffd", "[MASK]", "[CLS]", "\u0645", "\u05e9",
]


def random_texts(n, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("lowercase,strip", [(True, None), (False, None), (True, False), (False, True)])
def test_basic_tokenizer_matches_reference(lowercase, strip):
    ref = bert_reference.BasicTokenizer(do_lower_case=lowercase, strip_accents=strip)
    for s in random_texts(400, seed=(3 if lowercase else 5) + (7 if strip else 11)):
        s = s.replace("[MASK]", "").replace("[CLS]", "")  # BertTokenizer cuts these out before
        expected = ref.tokenize(bert_reference.bert_lower(s) if lowercase else s,
                                never_split=bert_reference.SPECIALS)
        assert text.basic_tokenize(s, lowercase=lowercase, strip_accents=strip) == expected, repr(s)


def test_ids_match_reference_on_random_and_report_text(vocab_path):
    tok = text.WordPieceTokenizer.from_vocab_file(vocab_path)
    ref = bert_reference.BertTokenizer(vocab_path)
    texts = random_texts(1500, seed=7) + [
        "No acute cardiopulmonary process.",
        "Mild pulmonary vascular congestion; small bilateral pleural effusions, 2.5 cm.",
        "a" * 100, "a" * 101, "\u00e9" * 100, "",
    ]
    for s in texts:
        assert tok.encode(s) == ref.encode(s), repr(s)
    assert tok.encode_many(texts, max_length=16) == [ref.encode(s, 16) for s in texts]


def test_invalid_utf8_bytes_are_dropped_like_replacement(vocab_path):
    tok = text.WordPieceTokenizer.from_vocab_file(vocab_path)
    ref = bert_reference.BertTokenizer(vocab_path)
    raw = b"pleural \xff effu\xe2\x82sion \xc0\xaf ok \xed\xa0\x80"
    assert not text.is_valid_utf8(raw)
    assert tok.encode(raw) == ref.encode(raw.decode("utf-8", "replace"))


def test_encode_batch_tensors(vocab_path):
    tok = text.WordPieceTokenizer.from_vocab_file(vocab_path, max_length=12)
    batch = tok.encode_batch(["Heart size is normal.", ""])
    assert batch["input_ids"].shape == (2, 12) and batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].sum(1).tolist() == batch["lengths"] == [7, 2]
    longest = tok.encode_batch(["a", "a b c"], padding="longest")
    assert longest["input_ids"].shape == (2, 5)
    with pytest.raises(ValueError):
        tok.encode_batch(["a"], 1)
    with pytest.raises(IndexError):
        tok.id_to_token(tok.vocab_size)
    with pytest.raises(ValueError, match="cannot open"):
        text.WordPieceTokenizer.from_vocab_file("/nonexistent/vocab.txt")


def test_vocab_builder_and_roundtrip(tmp_path):
    corpus = ["Small left pleural effusion.", "No pleural effusion or pneumothorax."] * 20
    vocab = text.build_wordpiece_vocab(corpus, vocab_size=80)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert text.build_wordpiece_vocab(list(reversed(corpus)), vocab_size=80) == vocab
    path = str(tmp_path / "vocab.txt")
    text.save_vocab(vocab, path)
    tok = text.WordPieceTokenizer.from_vocab_file(path)
    assert tok.vocab == vocab
    assert tok.unk_id not in tok.encode("pleural pneumothorax")


def test_report_utilities():
    report = "FINAL REPORT\nINDICATION: cough\nFINDINGS: Lungs are\nclear. No effusion.\nIMPRESSION: Normal."
    s = text.extract_sections(report)
    assert s["findings"] == "Lungs are clear. No effusion." and s["impression"] == "Normal."
    assert text.pretraining_text(report) == "Lungs are clear. No effusion. Normal."
    assert text.split_sentences("1. Edema, 2.5 cm. 2. No effusion.") == ["Edema, 2.5 cm.", "No effusion."]
    assert not text.keep_for_pretraining("No change.")
    sampler = text.SentenceSampler(3)
    assert sampler.sample(["a", "b", "c"], 5, 9) == sampler.sample(["a", "b", "c"], 5, 9)
    with pytest.raises(ValueError):
        text.sample_sentence_index(0, 0, 0, 0)
