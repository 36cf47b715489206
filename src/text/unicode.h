#pragma once
// BertTokenizer's character classes and normalisation steps over utf8proc (not installed, not API).

#include <string>
#include <vector>

namespace convirt::text::detail {

/// BertTokenizer's _is_whitespace, extended with what Python's str.split() also splits on (Zl, Zp).
bool bert_is_whitespace(char32_t cp);
/// BertTokenizer's _is_control: categories C* except '\t', '\n', '\r'.
bool bert_is_control(char32_t cp);
/// BertTokenizer's _is_punctuation: ASCII symbols and punctuation, and every P* category.
bool bert_is_punctuation(char32_t cp);
/// BertTokenizer's _is_chinese_char: the CJK Unified Ideographs blocks.
bool bert_is_cjk(char32_t cp);

/// BertTokenizer's lower-casing: Python's str.lower() applied to one character at a time (its
/// special-token regex feeds lower() single characters), so simple case mapping plus U+0130 ->
/// "i\u0307", and no Final_Sigma context: capital sigma always becomes U+03C3.
void lower_word(std::vector<char32_t>& word);
/// BertTokenizer's _run_strip_accents: NFD, then drop the Mn code points.
void strip_accents(std::vector<char32_t>& word);
/// Canonical composition (NFC) of a code point sequence.
void nfc(std::vector<char32_t>& text);

}  // namespace convirt::text::detail
