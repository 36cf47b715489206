// WordPiece tokenization of arbitrary text (BasicTokenizer + greedy longest match) over a fixed
// vocabulary, with the option combinations the library supports; checks the documented invariants
// (length limits, [CLS]/[SEP] placement, ids in range).
#include <convirt/text/wordpiece.h>

#include <cstdlib>

#include "fuzz_util.h"

namespace {

std::vector<std::string> vocab() {
  return {"[PAD]",  "[UNK]",    "[CLS]",    "[SEP]",  "[MASK]", "no",    "pl",   "##eur",
          "##al",   "effusion", "##s",      ".",      ",",      "2",     "##5",  "cm",
          "é",      "中",       "a",        "##a",    "the",    "heart", "size", "is",
          "normal", "un",       "##believ", "##able", "-",      "_"};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::text;
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto opts = WordPieceOptions()
                  .lowercase(flags & 1)
                  .tokenize_cjk(flags & 2)
                  .split_special_tokens(flags & 4)
                  .max_input_chars_per_word((flags & 8) ? 5 : 100)
                  .num_threads(1);
  if (flags & 16) opts.strip_accents(static_cast<bool>(flags & 32));
  static const WordPieceTokenizer* cached[64] = {};
  const WordPieceTokenizer*& tok = cached[flags & 63];
  if (tok == nullptr) tok = new WordPieceTokenizer(vocab(), opts);

  convirt::fuzz::expect_clean([&] {
    BasicTokenizer(opts).tokenize(text);
    auto pieces = tok->tokenize(text);
    const int64_t max_length = 2 + (flags >> 6);
    auto ids = tok->encode(text, true, max_length);
    if (static_cast<int64_t>(ids.size()) > max_length || ids.front() != tok->cls_id() ||
        ids.back() != tok->sep_id()) {
      std::abort();
    }
    auto all = tok->encode(text, false);
    for (int64_t id : all) {
      if (id < 0 || id >= tok->vocab_size()) std::abort();
    }
    tok->decode(all, false);
    auto batch = tok->encode_batch({text, text.substr(0, text.size() / 2)}, max_length,
                                   (flags & 64) ? Padding::kLongest : Padding::kMaxLength);
    if (batch.input_ids.size(1) > max_length) std::abort();
  });
  return 0;
}
