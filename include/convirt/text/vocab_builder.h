#pragma once
// Learns a WordPiece vocabulary from a corpus, for pretraining a text encoder from scratch on a new
// domain (or on the synthetic dataset). Plain C++: no LibTorch types.

#include <convirt/text/wordpiece.h>

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace convirt::text {

/// Options of the vocabulary builder.
///
/// Example:
///   auto opts = convirt::text::VocabBuilderOptions().vocab_size(2000).min_frequency(2);
struct VocabBuilderOptions {
  /// Target size, special tokens and the alphabet included; the result is smaller when the corpus
  /// runs out of pairs to merge.
  TORCH_ARG(int64_t, vocab_size) = 8000;
  /// A pair of pieces must occur at least this often (counting word frequency) to be merged.
  TORCH_ARG(int64_t, min_frequency) = 2;
  /// Keep at most this many distinct characters (the most frequent; ties by code point order);
  /// words with other characters still count for the pairs they contain.
  TORCH_ARG(int64_t, limit_alphabet) = 1000;
  /// Special tokens, first in the vocabulary in this order ([PAD] gets id 0).
  TORCH_ARG(std::vector<std::string>, special_tokens) = std::vector<std::string>{
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  /// The text normalisation (lower case, accents, CJK, continuation prefix, word length limit); use
  /// the same options for the tokenizer that will read the vocabulary.
  TORCH_ARG(WordPieceOptions, tokenizer) = WordPieceOptions();
};

/// Counts the words of a corpus, then learns WordPiece merges.
///
/// Training follows the WordPiece recipe: start from single characters (word-initial "x" and
/// continuation "##x"), then repeatedly merge the adjacent pair with the highest score
/// count(ab) / (count(a) * count(b)) until vocab_size is reached. Ties break on the higher pair
/// count, then on the merged string's byte order, so the result depends only on the word counts:
/// the same corpus gives the same vocabulary whatever the order texts were added in.
///
/// Example:
///   convirt::text::WordPieceVocabBuilder
///   builder(convirt::text::VocabBuilderOptions().vocab_size(3000)); for (const auto& report :
///   reports) builder.add_text(report); std::vector<std::string> vocab = builder.build();
///   convirt::text::WordPieceTokenizer tok(vocab);
class WordPieceVocabBuilder {
 public:
  explicit WordPieceVocabBuilder(VocabBuilderOptions options = {});

  /// Adds the words of one text (normalised as the tokenizer would).
  void add_text(std::string_view text);
  /// Adds the words of several texts.
  void add_texts(const std::vector<std::string>& texts);

  /// The vocabulary in id order: special tokens, the alphabet (characters, then "##" characters,
  /// each in byte order), then the merged pieces in the order they were learnt. Throws a ValueError
  /// when vocab_size is smaller than the special tokens plus the alphabet.
  std::vector<std::string> build() const;

  /// Distinct words counted so far.
  int64_t num_words() const { return static_cast<int64_t>(counts_.size()); }
  const VocabBuilderOptions& options() const { return options_; }

 private:
  VocabBuilderOptions options_;
  BasicTokenizer basic_;
  std::unordered_map<std::string, int64_t> counts_;
};

/// Builds a vocabulary from `texts` in one call (see WordPieceVocabBuilder).
std::vector<std::string> build_wordpiece_vocab(const std::vector<std::string>& texts,
                                               const VocabBuilderOptions& options = {});

/// Writes `vocab` as vocab.txt (one token per line, id order). Throws a ValueError when the file
/// cannot be written or a token contains a line break.
void save_vocab(const std::vector<std::string>& vocab, const std::string& path);

}  // namespace convirt::text
