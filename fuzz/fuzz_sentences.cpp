// Sentence splitting of report text, with and without list-marker stripping and empty-sentence
// dropping, plus the sentence sampler over the result.
#include <convirt/text/sentences.h>

#include <algorithm>
#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::text;
  if (size < 1) return 0;
  SentenceSplitOptions o;
  o.strip_list_markers = data[0] & 1;
  o.drop_empty = data[0] & 2;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  convirt::fuzz::expect_clean([&] {
    auto sentences = split_sentences(text, o);
    size_t total = 0;
    for (const auto& s : sentences) total += s.size();
    // Sentences are pieces of the text with whitespace collapsed; the only bytes added are the
    // spaces put back after a period glued to the next sentence ("effusion.Heart").
    const size_t periods = static_cast<size_t>(std::count(text.begin(), text.end(), '.'));
    if (total > text.size() + periods) std::abort();
    if (!sentences.empty()) {
      SentenceSampler sampler(data[0]);
      sampler.sample(sentences, size, data[0]);
    }
  });
  return 0;
}
