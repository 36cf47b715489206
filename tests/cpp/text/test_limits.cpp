// Resource limits of the text readers: a vocab.txt larger than its documented limit is refused
// before it is read.
#include <convirt/text/wordpiece.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "test_util.h"

using namespace convirt::text;
using Catch::Matchers::Contains;

TEST_CASE("limits: a vocab file above max_vocab_file_bytes is refused", "[text][limits]") {
  CHECK(WordPieceOptions().max_vocab_file_bytes() == (int64_t{64} << 20));
  convirt::test::TempDir dir("convirt-vocab");
  const auto path = (dir / "vocab.txt").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    for (int i = 0; i < 1000; ++i) out << "tok" << i << "\n";
  }
  CHECK_THROWS_WITH(
      WordPieceTokenizer::from_vocab_file(path, WordPieceOptions().max_vocab_file_bytes(1000)),
      Contains("more than the limit of 1000 bytes") && Contains("max_vocab_file_bytes"));
  CHECK(WordPieceTokenizer::from_vocab_file(path).vocab_size() == 1004);
}
