#include <convirt/text/report.h>
#include <convirt/text/vocab_builder.h>
#include <convirt/text/wordpiece.h>

#include "test_util.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

using convirt::text::BasicTokenizer;
using convirt::text::Padding;
using convirt::text::WordPieceOptions;
using convirt::text::WordPieceTokenizer;

using namespace std::string_literals;

namespace {

std::string bert_vocab_path() {
  return (convirt::test::test_data_dir() / "bert-base-uncased-vocab.txt").string();
}

const WordPieceTokenizer& bert_uncased() {
  static const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(bert_vocab_path());
  return tok;
}

struct IdCase {
  const char* name;
  std::string text;
  std::vector<int64_t> ids;
};

// Ids of Hugging Face's BertTokenizer (bert-base-uncased vocab.txt, defaults) for each text;
// invalid UTF-8 rows as BertTokenizer sees `bytes.decode("utf-8", "replace")`. Derived with the
// transcription of BertTokenizer in tests/python/bert_reference.py and checked piece by piece
// against the vocab file (the comment shows the pieces).
const std::vector<IdCase>& id_cases() {
  static const std::vector<IdCase> cases = {
      {"empty", "", {101, 102}},                                                  //
      {"only whitespace", "   \x09\x0a\x0d\x0a ", {101, 102}},                    //
      {"ascii punctuation", "Hello, World!", {101, 7592, 1010, 2088, 999, 102}},  // hello , world !
      {"report sentence",
       "No acute cardiopulmonary process. Mild bibasilar atelectasis.",
       {101,   2053,  11325, 4003, 3695, 14289, 13728, 7856, 2854, 2832, 1012, 10256,
        12170, 22083, 11733, 2099, 8823, 2571,  25572, 6190, 1012, 102}},  // no acute card ##io
                                                                           // ##pu ##lm ##ona ##ry
                                                                           // process . mild bi ##
      {"numbers and units",
       "2.5cm x 3,5 mm; T12-L1 at 10:30",
       {101,  1016,  1012, 1019, 27487, 1060, 1017, 1010, 1019, 3461, 1025,
        1056, 12521, 1011, 1048, 2487,  2012, 2184, 1024, 2382, 102}},  // 2 . 5 ##cm x 3 , 5 mm ; t
                                                                        // ##12 - l ##1 at 10 : 30
      {"apostrophes and hyphens",
       "don't stop-believing",
       {101, 2123, 1005, 1056, 2644, 1011, 8929, 102}},  // don ' t stop - believing
      {"punctuation runs",
       "wait...!?!--(yes)[]{}~`^_@#$%&*+=<>|\\/\"",
       {101,  3524, 1012, 1012, 1012, 999,  1029, 999,  1011, 1011, 1006, 2748, 1007,
        1031, 1033, 1063, 1065, 1066, 1036, 1034, 1035, 1030, 1001, 1002, 1003, 1004,
        1008, 1009, 1027, 1026, 1028, 1064, 1032, 1013, 1000, 102}},  // wait . . . ! ? ! - - ( yes
                                                                      // ) [ ] { } ~ ` ^ _ @ # $ % &
                                                                      // * + =
      {"accents stripped",
       "H\xc3\xa9llo na\xc3\xafve caf\xc3\xa9 \xc3\x85NGSTR\xc3\x96M",
       {101, 7592, 15743, 7668, 17076, 15687, 102}},  // hello naive cafe ang ##strom
      {"letters without decomposition",
       "\xc3\x98rsted Stra\xc3\x9f"
       "e \xc5\x81\xc3\xb3"
       "d\xc5\xba",
       {101, 1100, 12096, 2098, 2358, 27807, 17814,
        102}},  // \xf8 ##rst ##ed st ##ra\xdfe \u0142odz
      {"decomposed input",
       "cafe\xcc\x81 re\xcc\x81sume\xcc\x81",
       {101, 7668, 13746, 102}},  // cafe resume
      {"angstrom and kelvin signs",
       "5 \xe2\x84\xab 300\xe2\x84\xaa",
       {101, 1019, 1037, 3998, 2243, 102}},                       // 5 a 300 ##k
      {"dotted capital I", "\xc4\xb0stanbul", {101, 9960, 102}},  // istanbul
      {"capital sigma lowers without Final_Sigma context",
       "\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91\xce\xa3.",
       {101, 1169, 29722, 29730, 29733, 1173, 14608, 29733, 1012,
        102}},  // \u03bf ##\u03b4 ##\u03bf\u03c2 \u03c3 ##\u03b1 ##\u03c2 .
      {"cjk split",
       "\xe5\x8c\x97\xe4\xba\xac\xe5\xa4\xa7\xe5\xad\xa6 is in \xe4\xb8\xad\xe5\x9b\xbd",
       {101, 1781, 1755, 1810, 1817, 2003, 1999, 1746, 1799,
        102}},  // \u5317 \u4eac \u5927 \u5b66 is in \u4e2d \u56fd
      {"kana not split",
       "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf",
       {101, 1655, 30217, 30194, 30188, 30198, 102}},  // \u3053 ##\u3093 ##\u306b ##\u3061 ##\u306f
      {"hangul decomposed",
       "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
       {101, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008,
        102}},  // \u1112 ##\u1161 ##\u11ab ##\u1100 ##\u116e ##\u11a8 ##\u110b ##\u1165
      {"hebrew and arabic",
       "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
       {101, 1266, 29799, 29792, 29800, 1295, 17149, 29820, 29816, 25573,
        102}},  // \u05e9 ##\u05dc ##\u05d5 ##\u05dd \u0645 ##\u0631 ##\u062d ##\u0628 ##\u0627
      {"fullwidth forms",
       "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x81",
       {101, 100, 1986, 102}},  // [UNK] \uff01
      {"emoji and symbols",
       "\xf0\x9f\x98\x80 smile \xe2\x86\x92 \xc2\xb0"
       "C \xc2\xb1",
       {101, 100, 2868, 1585, 6362, 1081, 102}},  // [UNK] smile \u2192 \xb0c \xb1
      {"control characters removed",
       "a\x00"
       "b\x01"
       "c\x7f"
       "d\xe2\x80\x8b"
       "e\xc2\xad"
       "f\x0bg"s,
       {101, 5925, 3207, 2546, 2290, 102}},  // abc ##de ##f ##g
      {"unicode spaces",
       "a\xc2\xa0"
       "b\xe2\x80\xa8"
       "c\xe3\x80\x80"
       "d\xe2\x80\x89"
       "e\xc2\x85"
       "f",
       {101, 1037, 1038, 1039, 1040, 1041, 2546, 102}},  // a b c d e ##f
      {"combining marks pile",
       "z\xcd\x91\xcc\xb4"
       "a\xcc\x88\xcc\xa3",
       {101, 23564, 102}},  // za
      {"word of 100 chars",
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaa",
       {101,   13360, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 2050,  102}},  // aaa ##aa ##aa ##aa ##aa ##aa
                                                                 // ##aa ##aa ##aa ##aa ##aa ##aa #
      {"word of 101 chars",
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaa ok",
       {101, 100, 7929, 102}},  // [UNK] ok
      {"100 accented chars: the limit counts code points after NFD",
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9",
       {101,  25212, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402,
        4402, 4402,  4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402,
        4402, 4402,  4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402,
        4402, 4402,  4402, 4402, 4402, 4402, 4402, 4402, 4402, 102}},  // ee ##ee ##ee ##ee ##ee
                                                                       // ##ee ##ee ##ee ##ee ##ee
                                                                       // ##ee ##ee ##
      {"101 accented chars",
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9",
       {101, 100, 102}},  // [UNK]
      {"invalid utf-8 bytes",
       "pleural \xff\xfe effusion \xe2\x82 ok \xc0\xafx \xed\xa0\x80y",
       {101, 20228, 11236, 2389, 1041, 4246, 14499, 7929, 1060, 1061,
        102}},  // pl ##eur ##al e ##ff ##usion ok x y
      {"truncated sequence at end", "edema \xe4\xb8", {101, 3968, 14545, 102}},  // ed ##ema
      {"special tokens kept",
       "[MASK] is [mask] [CLS]x[SEP][UNK]",
       {101, 103, 2003, 1031, 7308, 1033, 101, 1060, 102, 100,
        102}},  // [MASK] is [ mask ] [CLS] x [SEP] [UNK]
      {"unknown piece", "\xe2\x98\x83snowman", {101, 100, 102}},  // [UNK]
      {"roman numeral", "\xe2\x85\xab", {101, 100, 102}},         // [UNK]
  };
  return cases;
}

struct BasicCase {
  const char* name;
  const char* text;
  std::vector<std::string> words;
};

WordPieceOptions basic_options(const std::string& name) {
  if (name.rfind("lowercase(false)", 0) == 0) return WordPieceOptions().lowercase(false);
  if (name.rfind("strip_accents(false)", 0) == 0) return WordPieceOptions().strip_accents(false);
  if (name.rfind("strip_accents(true)", 0) == 0) {
    return WordPieceOptions().lowercase(false).strip_accents(true);
  }
  return WordPieceOptions();
}

}  // namespace

TEST_CASE("WordPiece ids match BertTokenizer on tricky strings", "[text][wordpiece]") {
  const auto& tok = bert_uncased();
  REQUIRE(tok.vocab_size() == 30522);
  for (const auto& c : id_cases()) {
    INFO("case: " << c.name);
    CHECK(tok.encode(c.text) == c.ids);
  }
}

TEST_CASE("BasicTokenizer options: case, accents and NFC", "[text][wordpiece]") {
  const std::vector<BasicCase> cases = {
      {"lowercase(false): NFC, case kept",
       "Cafe\xcc\x81 \xc3\x85"
       "B x\xcc\xa3\xcc\x87",
       {"Caf\xc3\xa9",
        "\xc3\x85"
        "B",
        "\xe1\xba\x8b\xcc\xa3"}},
      {"strip_accents(false): lower only",
       "CAF\xc3\x89 \xc4\xb0 Cafe\xcc\x81",
       {"caf\xc3\xa9", "i\xcc\x87", "caf\xc3\xa9"}},
      {"strip_accents(true), case kept",
       "Caf\xc3\xa9 \xc3\x85"
       "B",
       {"Cafe", "AB"}},
      {"defaults",
       "H\xc3\xa9llo, WORLD! \xe5\x8c\x97\xe4\xba\xac",
       {"hello", ",", "world", "!", "\xe5\x8c\x97", "\xe4\xba\xac"}},
  };
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    CHECK(BasicTokenizer(basic_options(c.name)).tokenize(c.text) == c.words);
  }
  CHECK(
      BasicTokenizer(WordPieceOptions().tokenize_cjk(false)).tokenize("\xe5\x8c\x97\xe4\xba\xac") ==
      std::vector<std::string>{"\xe5\x8c\x97\xe4\xba\xac"});
  CHECK(BasicTokenizer(WordPieceOptions().split_special_tokens(true)).tokenize("[MASK]") ==
        std::vector<std::string>{"[", "mask", "]"});
}

TEST_CASE("encode truncates, decode joins pieces", "[text][wordpiece]") {
  const auto& tok = bert_uncased();
  CHECK(tok.tokenize("effusions") == std::vector<std::string>{"e", "##ff", "##usions"});
  auto ids = tok.encode("No acute cardiopulmonary process.", true, 5);
  CHECK(ids == std::vector<int64_t>{101, 2053, 11325, 4003, 102});
  CHECK(tok.encode("No acute", false) == std::vector<int64_t>{2053, 11325});
  CHECK(tok.encode("No acute", false, 1) == std::vector<int64_t>{2053});
  CHECK(tok.decode(tok.encode("No acute cardiopulmonary process.")) ==
        "no acute cardiopulmonary process .");
  CHECK(tok.decode({101, 2053, 102}, false) == "[CLS] no [SEP]");
  CHECK(tok.token_to_id("[MASK]") == 103);
  CHECK(tok.token_to_id("not-a-token") == -1);
  CHECK(tok.id_to_token(7592) == "hello");
  CHECK(tok.pad_id() == 0);
  CHECK(tok.unk_id() == 100);
  CHECK(tok.cls_id() == 101);
  CHECK(tok.sep_id() == 102);
  CHECK(tok.mask_id() == 103);
  CHECK_THROWS_AS(tok.id_to_token(30522), c10::IndexError);
  CHECK_THROWS_AS(tok.decode({-1}), c10::IndexError);
  CHECK_THROWS_AS(tok.encode("x", true, 1), c10::ValueError);
}

TEST_CASE("encode_batch pads, truncates and masks into int64 tensors", "[text][wordpiece]") {
  const auto& tok = bert_uncased();
  std::vector<std::string> texts{"Heart size is normal.", "", "No acute cardiopulmonary process."};
  auto batch = tok.encode_batch(texts, 8);
  REQUIRE(batch.input_ids.sizes() == at::IntArrayRef({3, 8}));
  CHECK(batch.input_ids.scalar_type() == at::kLong);
  CHECK(batch.attention_mask.scalar_type() == at::kLong);
  CHECK(batch.token_type_ids.sum().item<int64_t>() == 0);
  auto row0 = tok.encode(texts[0]);
  REQUIRE(row0.size() == 7);
  for (std::size_t j = 0; j < 7; ++j) CHECK(batch.input_ids[0][j].item<int64_t>() == row0[j]);
  CHECK(batch.input_ids[0][7].item<int64_t>() == 0);
  CHECK(batch.attention_mask[0].sum().item<int64_t>() == 7);
  CHECK(batch.lengths == std::vector<int64_t>{7, 2, 8});
  CHECK(batch.input_ids[1][0].item<int64_t>() == 101);
  CHECK(batch.input_ids[1][1].item<int64_t>() == 102);
  CHECK(batch.input_ids[2][7].item<int64_t>() == 102);  // truncated row still ends with [SEP]
  CHECK(batch.attention_mask[2].sum().item<int64_t>() == 8);
  auto longest = tok.encode_batch({"a b", "a"}, 128, Padding::kLongest);
  CHECK(longest.input_ids.sizes() == at::IntArrayRef({2, 4}));
  CHECK(longest.attention_mask.sum().item<int64_t>() == 7);
  auto defaults = tok.encode_batch({"a"});
  CHECK(defaults.input_ids.size(1) == 128);
  auto empty = tok.encode_batch({}, 16);
  CHECK(empty.input_ids.sizes() == at::IntArrayRef({0, 16}));
  CHECK_THROWS_AS(tok.encode_batch({"a"}, 1), c10::ValueError);
}

TEST_CASE("encode_many gives the same ids on any number of threads", "[text][wordpiece]") {
  std::vector<std::string> texts;
  for (int i = 0; i < 500; ++i) {
    texts.push_back("Case " + std::to_string(i) + ": mild bibasilar atelectasis, 2." +
                    std::to_string(i % 10) + " cm \xc3\xa9" + "panchement.");
  }
  auto one =
      WordPieceTokenizer::from_vocab_file(bert_vocab_path(), WordPieceOptions().num_threads(1));
  auto four =
      WordPieceTokenizer::from_vocab_file(bert_vocab_path(), WordPieceOptions().num_threads(4));
  auto a = one.encode_many(texts, true, 16);
  auto b = four.encode_many(texts, true, 16);
  REQUIRE(a.size() == texts.size());
  CHECK(a == b);
  for (std::size_t i = 0; i < texts.size(); i += 97) CHECK(a[i] == one.encode(texts[i], true, 16));
}

TEST_CASE("vocabulary files: round trip and clear errors", "[text][wordpiece]") {
  convirt::test::TempDir dir("text");
  const auto path = (dir / "vocab.txt").string();
  bert_uncased().save_vocab(path);
  auto again = WordPieceTokenizer::from_vocab_file(path);
  CHECK(again.vocab() == bert_uncased().vocab());

  auto write = [&](const std::string& name, const std::string& data) {
    std::ofstream(dir / name, std::ios::binary) << data;
    return (dir / name).string();
  };
  // "\r\n" and "\r" end lines as in Python's universal newlines.
  auto crlf = WordPieceTokenizer::from_vocab_file(write("crlf.txt", "[PAD]\r\n[UNK]\rab\n##c\n"));
  CHECK(crlf.vocab_size() == 4);
  CHECK(crlf.encode("abc", false) == std::vector<int64_t>{2, 3});
  CHECK(crlf.encode("abd", false) == std::vector<int64_t>{1});
  CHECK(crlf.cls_id() == -1);
  CHECK_THROWS_AS(crlf.encode("abc"), c10::ValueError);  // no [CLS]/[SEP]
  CHECK_THROWS_AS(crlf.encode_batch({"abc"}), c10::ValueError);
  CHECK_THROWS_WITH(WordPieceTokenizer::from_vocab_file((dir / "missing.txt").string()),
                    Catch::Contains("cannot open") && Catch::Contains("missing.txt"));
  CHECK_THROWS_WITH(WordPieceTokenizer::from_vocab_file(write("empty.txt", "")),
                    Catch::Contains("is empty"));
  CHECK_THROWS_WITH(WordPieceTokenizer::from_vocab_file(write("nounk.txt", "a\nb\n")),
                    Catch::Contains("no unknown token '[UNK]'"));
  CHECK_THROWS_WITH(WordPieceTokenizer::from_vocab_file(write("bad.txt", "[UNK]\n\xff\n")),
                    Catch::Contains("line 2 is not valid UTF-8"));
  CHECK_THROWS_AS(WordPieceTokenizer(std::vector<std::string>{}), c10::ValueError);
  CHECK_THROWS_AS(WordPieceTokenizer({"[UNK]"}, WordPieceOptions().max_input_chars_per_word(0)),
                  c10::ValueError);
  CHECK_THROWS_AS(convirt::text::save_vocab({"a\nb"}, (dir / "x.txt").string()), c10::ValueError);
}

TEST_CASE("the vocabulary builder learns frequent pieces deterministically", "[text][vocab]") {
  using convirt::text::VocabBuilderOptions;
  using convirt::text::WordPieceVocabBuilder;
  std::vector<std::string> corpus;
  for (int i = 0; i < 50; ++i) {
    corpus.push_back("Small left pleural effusion. No pneumothorax.");
    corpus.push_back("Moderate right pleural effusions with atelectasis.");
    corpus.push_back("The heart is enlarged; cardiomegaly " + std::to_string(i % 7) + ".");
  }
  auto opts = VocabBuilderOptions().vocab_size(120);
  auto vocab = convirt::text::build_wordpiece_vocab(corpus, opts);
  REQUIRE(vocab.size() == 120);
  CHECK(std::vector<std::string>(vocab.begin(), vocab.begin() + 5) ==
        std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"});
  // The same counts in another order give the same vocabulary.
  std::vector<std::string> reversed(corpus.rbegin(), corpus.rend());
  CHECK(convirt::text::build_wordpiece_vocab(reversed, opts) == vocab);
  // Every character has a word-initial and a continuation piece: no [UNK] on unseen words.
  WordPieceTokenizer tok(vocab);
  for (int64_t id : tok.encode("Pleural thorax; heart 5.")) CHECK(id != tok.unk_id());
  CHECK(tok.encode("\xe2\x98\x83", false) == std::vector<int64_t>{tok.unk_id()});
  // A larger budget learns whole frequent words.
  auto big = convirt::text::build_wordpiece_vocab(corpus, VocabBuilderOptions().vocab_size(400));
  CHECK(big.size() < 400);  // the corpus runs out of pairs first
  WordPieceTokenizer big_tok(big);
  CHECK(big_tok.tokenize("pleural effusion") == std::vector<std::string>{"pleural", "effusion"});
  WordPieceVocabBuilder builder(opts);
  builder.add_text("[CLS] edema edema");
  CHECK(builder.num_words() == 1);  // literal special tokens are not counted as words
  CHECK_THROWS_WITH(
      convirt::text::build_wordpiece_vocab(corpus, VocabBuilderOptions().vocab_size(10)),
      Catch::Contains("vocab_size must be >="));
  CHECK_THROWS_AS(WordPieceVocabBuilder(VocabBuilderOptions().min_frequency(0)), c10::ValueError);
}
