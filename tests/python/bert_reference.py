"""An independent transcription of Hugging Face's BertTokenizer (transformers' tokenization_bert.py and
the special-token split of PreTrainedTokenizer.tokenize), written with Python's unicodedata only. It is
the oracle the convirt tokenizer tests compare against, since transformers is not installable here."""

import unicodedata


def load_vocab(path):
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        tokens = f.readlines()
    for index, token in enumerate(tokens):
        vocab[token.rstrip("\n")] = index
    return vocab


def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []


def _is_whitespace(char):
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
    return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
            or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF)
            or (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


class BasicTokenizer:
    def __init__(self, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None):
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def tokenize(self, text, never_split=()):
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._tokenize_chinese_chars(text)
        text = unicodedata.normalize("NFC", text)
        split_tokens = []
        for token in whitespace_tokenize(text):
            if token not in never_split:
                if self.do_lower_case:
                    token = token.lower()
                    if self.strip_accents is not False:
                        token = self._run_strip_accents(token)
                elif self.strip_accents:
                    token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token, never_split))
        return whitespace_tokenize(" ".join(split_tokens))

    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    def _run_split_on_punc(self, text, never_split):
        if text in never_split:
            return [text]
        output, start_new_word = [], True
        for char in text:
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
        return ["".join(x) for x in output]

    def _tokenize_chinese_chars(self, text):
        out = []
        for char in text:
            if _is_chinese_char(ord(char)):
                out += [" ", char, " "]
            else:
                out.append(char)
        return "".join(out)

    def _clean_text(self, text):
        out = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)


class WordpieceTokenizer:
    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab, self.unk_token, self.max_chars = vocab, unk_token, max_input_chars_per_word

    def tokenize(self, text):
        output = []
        for token in whitespace_tokenize(text):
            chars = list(token)
            if len(chars) > self.max_chars:
                output.append(self.unk_token)
                continue
            is_bad, start, sub_tokens = False, 0, []
            while start < len(chars):
                end, cur = len(chars), None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur = substr
                        break
                    end -= 1
                if cur is None:
                    is_bad = True
                    break
                sub_tokens.append(cur)
                start = end
            output.extend([self.unk_token] if is_bad else sub_tokens)
        return output


def bert_lower(text):
    """PreTrainedTokenizer.tokenize lower-cases with re.sub(r"(special)|(.+?)", ...): the lazy `.+?`
    matches one character at a time, so each character is lower-cased alone (no Final_Sigma context)."""
    return "".join(c.lower() for c in text)


SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


class BertTokenizer:
    def __init__(self, vocab_file, do_lower_case=True, strip_accents=None):
        self.vocab = load_vocab(vocab_file)
        self.do_lower_case = do_lower_case
        self.basic = BasicTokenizer(do_lower_case, True, strip_accents)
        self.wordpiece = WordpieceTokenizer(self.vocab)

    def _split_specials(self, text):
        # PreTrainedTokenizer.tokenize: literal special tokens are cut out first (a trie, longest match).
        pieces, pos = [], 0
        while pos < len(text):
            best, best_tok = None, None
            for s in SPECIALS:
                at = text.find(s, pos)
                if at >= 0 and (best is None or at < best or (at == best and len(s) > len(best_tok))):
                    best, best_tok = at, s
            if best is None:
                pieces.append((text[pos:], False))
                break
            pieces.append((text[pos:best], False))
            pieces.append((best_tok, True))
            pos = best + len(best_tok)
        return pieces

    def tokenize(self, text):
        out = []
        for piece, special in self._split_specials(text):
            if special:
                out.append(piece)
                continue
            if self.do_lower_case:
                piece = bert_lower(piece)
            for token in self.basic.tokenize(piece, never_split=SPECIALS):
                out.extend(self.wordpiece.tokenize(token))
        return out

    def encode(self, text, max_length=None):
        ids = [self.vocab.get(t, self.vocab["[UNK]"]) for t in self.tokenize(text)]
        if max_length is not None:
            ids = ids[: max_length - 2]
        return [self.vocab["[CLS]"]] + ids + [self.vocab["[SEP]"]]
