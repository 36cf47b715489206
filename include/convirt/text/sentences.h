#pragma once
// Sentence splitting that survives radiology report text, and the paper's text augmentation: one
// sentence sampled uniformly per example per step (paper section 4). Plain C++: no LibTorch types.

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::text {

/// Options for split_sentences().
struct SentenceSplitOptions {
  /// Remove list markers ("1.", "2)", "-", "*", "•") at the start of a sentence.
  bool strip_list_markers = true;
  /// Drop sentences without any letter or digit (stray punctuation, "___").
  bool drop_empty = true;
};

/// Splits report text into sentences.
///
/// A sentence ends at '.', '!' or '?' (with any closing quotes or brackets) followed by whitespace,
/// at ';' is NOT a boundary, and at a blank line. It does not end at decimals ("2.5 cm"), at known
/// abbreviations ("Dr.", "e.g.", "approx.", "vs.", single initials), or inside numbered lists: a
/// list marker ("1.", "2)") at the start of a line, or after a boundary, starts a new sentence, and
/// a marker that follows the previous marker's number + 1 starts one even without a period before
/// it
/// ("1. Edema 2. Effusion"). A single line break is layout (reports are wrapped), not a boundary,
/// unless the next line starts with a list marker. Whitespace inside sentences is collapsed.
/// Example:
///   split_sentences("1. Mild edema, 2.5 cm. 2. No effusion.") == {"Mild edema, 2.5 cm.", "No
///   effusion."}
std::vector<std::string> split_sentences(const std::string& text,
                                         const SentenceSplitOptions& options = {});

/// The index of the sentence drawn for `example` at `step`: uniform over [0, n), a pure function of
/// (seed, example, step), so the draw is the same on every thread, worker count and after a resume.
/// Throws a ValueError when n == 0.
/// Example: size_t i = sample_sentence_index(sentences.size(), /*seed=*/0, example_id, step);
std::size_t sample_sentence_index(std::size_t n, std::uint64_t seed, std::uint64_t example,
                                  std::uint64_t step);

/// Draws one sentence per example per step (see sample_sentence_index()).
/// Example:
///   convirt::text::SentenceSampler sampler(/*seed=*/42);
///   const std::string& s = sampler.sample(sentences, example_id, step);
class SentenceSampler {
 public:
  explicit SentenceSampler(std::uint64_t seed = 0) : seed_(seed) {}

  /// The sentence drawn for (example, step). Throws a ValueError when `sentences` is empty.
  const std::string& sample(const std::vector<std::string>& sentences, std::uint64_t example,
                            std::uint64_t step) const;

  std::uint64_t seed() const { return seed_; }

 private:
  std::uint64_t seed_;
};

}  // namespace convirt::text
