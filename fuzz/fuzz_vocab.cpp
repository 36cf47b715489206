// vocab.txt loading (WordPieceTokenizer::from_vocab_file), then the loaded tokenizer on a fixed
// text: any vocabulary that loads must tokenize, encode, pad and decode without fault.
#include <convirt/text/wordpiece.h>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using convirt::text::WordPieceTokenizer;
  const std::string path = convirt::fuzz::write_file("vocab.txt", data, size);
  convirt::fuzz::expect_clean([&] {
    auto tok = WordPieceTokenizer::from_vocab_file(path);
    const std::string text = "No pleural effusion. Heart size 2.5 cm [MASK] unbelievable ___ é 中.";
    auto ids = tok.encode(text, /*add_special_tokens=*/false);
    tok.decode(ids, /*skip_special_tokens=*/true);
    tok.tokenize(text);
    for (int64_t id = 0; id < tok.vocab_size(); ++id) tok.token_to_id(tok.id_to_token(id));
    if (tok.cls_id() >= 0 && tok.sep_id() >= 0 && tok.pad_id() >= 0) {
      auto batch = tok.encode_batch({text, ""}, 8);
      if (batch.input_ids.size(1) > 8) std::abort();
    }
  });
  return 0;
}
