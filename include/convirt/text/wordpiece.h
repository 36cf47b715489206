#pragma once
// A WordPiece tokenizer that gives the ids Hugging Face's BertTokenizer gives on the same
// vocab.txt: BasicTokenizer (clean text, CJK split, lower case + accent strip through Unicode NFD,
// punctuation split) followed by greedy longest-match-first WordPiece. Unicode data comes from
// utf8proc.
//
// Only BatchEncoding carries tensors; everything else is plain C++ and thread-safe to call on a
// const tokenizer from several threads.

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace convirt::text {

/// How encode_batch() pads.
enum class Padding {
  /// Every row has max_length columns (fixed shapes; what the paper's 128-token setting uses).
  kMaxLength,
  /// Rows are padded to the longest encoded row of the batch (at most max_length).
  kLongest,
};

/// Options of the tokenizer; defaults are BertTokenizer's for an uncased vocabulary.
///
/// Example:
///   auto opts = convirt::text::WordPieceOptions().lowercase(false).max_length(64);
struct WordPieceOptions {
  /// Lower-case the text (BertTokenizer's do_lower_case).
  TORCH_ARG(bool, lowercase) = true;
  /// Strip accents (NFD, then drop combining marks). Unset: follow `lowercase`, as BertTokenizer
  /// does.
  TORCH_ARG(std::optional<bool>, strip_accents) = std::nullopt;
  /// Put spaces around CJK ideographs so that each is its own word.
  TORCH_ARG(bool, tokenize_cjk) = true;
  /// Words longer than this many code points become the unknown token.
  TORCH_ARG(int64_t, max_input_chars_per_word) = 100;
  /// Prefix of word-continuation pieces.
  TORCH_ARG(std::string, continuation_prefix) = "##";
  TORCH_ARG(std::string, unk_token) = "[UNK]";
  TORCH_ARG(std::string, cls_token) = "[CLS]";
  TORCH_ARG(std::string, sep_token) = "[SEP]";
  TORCH_ARG(std::string, pad_token) = "[PAD]";
  TORCH_ARG(std::string, mask_token) = "[MASK]";
  /// When false (BertTokenizer's default), the special tokens written literally in the text
  /// ("[MASK]", case-sensitive) are kept as single tokens; when true they are tokenized as text.
  TORCH_ARG(bool, split_special_tokens) = false;
  /// Default length of encode_batch() rows, [CLS] and [SEP] included.
  TORCH_ARG(int64_t, max_length) = 128;
  /// Default padding of encode_batch().
  TORCH_ARG(Padding, padding) = Padding::kMaxLength;
  /// Threads used by encode_batch(): 0 = the hardware's core count (never more than the batch
  /// needs).
  TORCH_ARG(int64_t, num_threads) = 0;
  /// from_vocab_file() refuses a larger file (a ValueError naming this limit) before reading it;
  /// BERT vocabularies are a few hundred kB, the largest multilingual ones a few MB.
  TORCH_ARG(int64_t, max_vocab_file_bytes) = int64_t{64} << 20;

 public:
  /// Whether accents are stripped after resolving the unset default.
  bool resolved_strip_accents() const { return strip_accents_.value_or(lowercase_); }
};

/// A batch of encoded texts, every tensor int64 [B, L].
struct BatchEncoding {
  /// Token ids, [CLS] first, [SEP] last, [PAD] after.
  at::Tensor input_ids;
  /// 1 for real tokens (specials included), 0 for padding.
  at::Tensor attention_mask;
  /// All zeros (one segment), as BERT's token_type_ids input expects.
  at::Tensor token_type_ids;
  /// Tokens per row before padding (specials included).
  std::vector<int64_t> lengths;
};

/// BertTokenizer's BasicTokenizer: text -> words and punctuation, normalised.
///
/// Invalid UTF-8: each ill-formed byte is dropped, exactly as if the bytes had been decoded with
/// Python's `bytes.decode("utf-8", "replace")` and given to BertTokenizer, which removes U+FFFD.
/// Example:
///   convirt::text::BasicTokenizer basic;
///   basic.tokenize("Héllo, WORLD!")  // {"hello", ",", "world", "!"}
class BasicTokenizer {
 public:
  explicit BasicTokenizer(WordPieceOptions options = {});

  /// Normalised words; the special tokens of the options stay whole unless split_special_tokens.
  std::vector<std::string> tokenize(std::string_view text) const;

  /// Appends the words of `text` to `words`; when `special` is given, appends whether each word is
  /// one of the special tokens kept whole.
  void tokenize_into(std::string_view text, std::vector<std::string>& words,
                     std::vector<bool>* special = nullptr) const;

  const WordPieceOptions& options() const { return options_; }

 private:
  void tokenize_chunk(std::string_view chunk, std::vector<std::string>& words,
                      std::vector<bool>* special) const;

  WordPieceOptions options_;
  std::vector<std::string> specials_;
};

/// WordPiece tokenizer over a BERT vocab.txt (one token per line, id = line number).
///
/// Example:
///   auto tok = convirt::text::WordPieceTokenizer::from_vocab_file("vocab.txt");
///   std::vector<int64_t> ids = tok.encode("No pleural effusion.");  // [CLS] no pleural effusion .
///   [SEP] auto batch = tok.encode_batch({"Heart size is normal.", "Small left effusion."});
///   // batch.input_ids: int64 [2, 128], batch.attention_mask: int64 [2, 128]
class WordPieceTokenizer {
 public:
  /// Builds a tokenizer from tokens in id order. Throws a ValueError when the list is empty, a
  /// token is empty or repeated, or the unknown token is missing; [CLS]/[SEP]/[PAD]/[MASK] may be
  /// absent (then the functions that need them say so).
  explicit WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options = {});

  /// Reads a vocab.txt (UTF-8, '\n' or "\r\n" line ends; a trailing empty line is ignored).
  /// Throws a ValueError naming the path when the file cannot be read or is not a valid vocabulary.
  static WordPieceTokenizer from_vocab_file(const std::string& path, WordPieceOptions options = {});

  /// Writes the vocabulary as vocab.txt, one token per line in id order.
  void save_vocab(const std::string& path) const;

  /// Word pieces of `text` (no [CLS]/[SEP]).
  /// Example: tok.tokenize("effusions") == {"effusion", "##s"}
  std::vector<std::string> tokenize(std::string_view text) const;

  /// Ids of `text`: [CLS] pieces... [SEP] when add_special_tokens. With max_length > 0 the pieces
  /// are truncated so that the result, specials included, has at most max_length ids.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true,
                              int64_t max_length = -1) const;

  /// encode() on every text, on options().num_threads() threads; the order of the result is the
  /// order of `texts` whatever the thread count.
  std::vector<std::vector<int64_t>> encode_many(const std::vector<std::string>& texts,
                                                bool add_special_tokens = true,
                                                int64_t max_length = -1) const;

  /// Encodes, truncates (to max_length, specials included) and pads a batch into int64 [B, L]
  /// tensors. max_length <= 0 means options().max_length(). Throws a ValueError when max_length < 2
  /// (no room for [CLS] and [SEP]) or the vocabulary has no [CLS], [SEP] or [PAD].
  BatchEncoding encode_batch(const std::vector<std::string>& texts, int64_t max_length = -1) const;
  /// As above with an explicit padding mode.
  BatchEncoding encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                             Padding padding) const;

  /// Tokens for ids, joined BertTokenizer-style ("##" pieces glued to the previous one).
  /// Throws an IndexError for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  /// The id of `token`, or -1 when it is not in the vocabulary.
  int64_t token_to_id(std::string_view token) const;
  /// The token of `id`; throws an IndexError outside [0, vocab_size()).
  const std::string& id_to_token(int64_t id) const;

  int64_t vocab_size() const;
  /// Ids of the special tokens; -1 when the vocabulary lacks one.
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t mask_id() const { return mask_id_; }

  const WordPieceOptions& options() const { return basic_.options(); }
  const std::vector<std::string>& vocab() const;

 private:
  struct Vocab;
  static bool is_valid_utf8_token(std::string_view token);
  void wordpiece(std::string_view word, std::vector<int64_t>& ids) const;
  void encode_into(std::string_view text, std::vector<int64_t>& ids) const;

  std::shared_ptr<const Vocab> vocab_;
  BasicTokenizer basic_;
  int64_t unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, mask_id_ = -1;
};

/// A short fingerprint of a vocabulary: a 64-bit FNV-1a hash of its tokens in id order, in hex.
/// Two vocabularies with the same tokens in the same order (all that token ids depend on) have the
/// same fingerprint wherever their files live; it names a vocabulary in errors and run records.
/// Example: vocab_fingerprint(tok.vocab()) == "9a3c...".
std::string vocab_fingerprint(const std::vector<std::string>& vocab);

}  // namespace convirt::text
