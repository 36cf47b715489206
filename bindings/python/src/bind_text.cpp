// convirt._C.text: the tokenizer, the vocabulary builder and the report text utilities.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/text/report.h>
#include <convirt/text/sentences.h>
#include <convirt/text/vocab_builder.h>
#include <convirt/text/wordpiece.h>

#include <pybind11/stl.h>

namespace py = pybind11;

namespace convirt::python {
namespace {

text::WordPieceOptions make_options(bool lowercase, std::optional<bool> strip_accents,
                                    bool tokenize_cjk, int64_t max_input_chars_per_word,
                                    bool split_special_tokens, int64_t max_length,
                                    const std::string& padding, int64_t num_threads) {
  CONVIRT_CHECK_VALUE(padding == "max_length" || padding == "longest",
                      "padding must be 'max_length' or 'longest', got '", padding, "'");
  return text::WordPieceOptions()
      .lowercase(lowercase)
      .strip_accents(strip_accents)
      .tokenize_cjk(tokenize_cjk)
      .max_input_chars_per_word(max_input_chars_per_word)
      .split_special_tokens(split_special_tokens)
      .max_length(max_length)
      .padding(padding == "longest" ? text::Padding::kLongest : text::Padding::kMaxLength)
      .num_threads(num_threads);
}

py::dict batch_dict(const text::BatchEncoding& b) {
  py::dict d;
  d["input_ids"] = b.input_ids;
  d["attention_mask"] = b.attention_mask;
  d["token_type_ids"] = b.token_type_ids;
  d["lengths"] = b.lengths;
  return d;
}

}  // namespace

void bind_text(py::module_& m) {
  auto t = m.def_submodule("text", "Tokenizer and report text utilities");

  py::class_<text::WordPieceTokenizer>(t, "WordPieceTokenizer",
                                       "BertTokenizer-compatible WordPiece tokenizer: encode, "
                                       "batch-encode to tensors (threaded, GIL released), decode.")
      .def(py::init([](std::vector<std::string> vocab, bool lowercase,
                       std::optional<bool> strip_accents, bool tokenize_cjk, int64_t max_chars,
                       bool split_special_tokens, int64_t max_length, const std::string& padding,
                       int64_t num_threads) {
             return text::WordPieceTokenizer(
                 std::move(vocab),
                 make_options(lowercase, strip_accents, tokenize_cjk, max_chars,
                              split_special_tokens, max_length, padding, num_threads));
           }),
           py::arg("vocab"), py::arg("lowercase") = true, py::arg("strip_accents") = py::none(),
           py::arg("tokenize_cjk") = true, py::arg("max_input_chars_per_word") = 100,
           py::arg("split_special_tokens") = false, py::arg("max_length") = 128,
           py::arg("padding") = "max_length", py::arg("num_threads") = 0)
      .def_static(
          "from_vocab_file",
          [](const std::string& path, bool lowercase, std::optional<bool> strip_accents,
             bool tokenize_cjk, int64_t max_chars, bool split_special_tokens, int64_t max_length,
             const std::string& padding, int64_t num_threads) {
            return text::WordPieceTokenizer::from_vocab_file(
                path, make_options(lowercase, strip_accents, tokenize_cjk, max_chars,
                                   split_special_tokens, max_length, padding, num_threads));
          },
          py::arg("path"), py::arg("lowercase") = true, py::arg("strip_accents") = py::none(),
          py::arg("tokenize_cjk") = true, py::arg("max_input_chars_per_word") = 100,
          py::arg("split_special_tokens") = false, py::arg("max_length") = 128,
          py::arg("padding") = "max_length", py::arg("num_threads") = 0)
      .def("tokenize", &text::WordPieceTokenizer::tokenize, py::arg("text"))
      .def("encode", &text::WordPieceTokenizer::encode, py::arg("text"),
           py::arg("add_special_tokens") = true, py::arg("max_length") = -1)
      .def("encode_many", &text::WordPieceTokenizer::encode_many, py::arg("texts"),
           py::arg("add_special_tokens") = true, py::arg("max_length") = -1,
           py::call_guard<py::gil_scoped_release>())
      .def(
          "encode_batch",
          [](const text::WordPieceTokenizer& tok, const std::vector<std::string>& texts,
             int64_t max_length, std::optional<std::string> padding) {
            text::BatchEncoding b;
            {
              py::gil_scoped_release release;
              if (padding) {
                CONVIRT_CHECK_VALUE(*padding == "max_length" || *padding == "longest",
                                    "padding must be 'max_length' or 'longest', got '", *padding,
                                    "'");
                b = tok.encode_batch(
                    texts, max_length,
                    *padding == "longest" ? text::Padding::kLongest : text::Padding::kMaxLength);
              } else {
                b = tok.encode_batch(texts, max_length);
              }
            }
            return batch_dict(b);
          },
          py::arg("texts"), py::arg("max_length") = -1, py::arg("padding") = py::none())
      .def("decode", &text::WordPieceTokenizer::decode, py::arg("ids"),
           py::arg("skip_special_tokens") = true)
      .def("token_to_id", &text::WordPieceTokenizer::token_to_id, py::arg("token"))
      .def("id_to_token", &text::WordPieceTokenizer::id_to_token, py::arg("id"))
      .def("save_vocab", &text::WordPieceTokenizer::save_vocab, py::arg("path"))
      .def_property_readonly("vocab_size", &text::WordPieceTokenizer::vocab_size)
      .def_property_readonly("vocab", &text::WordPieceTokenizer::vocab)
      .def_property_readonly("pad_id", &text::WordPieceTokenizer::pad_id)
      .def_property_readonly("unk_id", &text::WordPieceTokenizer::unk_id)
      .def_property_readonly("cls_id", &text::WordPieceTokenizer::cls_id)
      .def_property_readonly("sep_id", &text::WordPieceTokenizer::sep_id)
      .def_property_readonly("mask_id", &text::WordPieceTokenizer::mask_id)
      .def("__len__", &text::WordPieceTokenizer::vocab_size);

  t.def(
      "basic_tokenize",
      [](const std::string& s, bool lowercase, std::optional<bool> strip_accents,
         bool tokenize_cjk) {
        return text::BasicTokenizer(make_options(lowercase, strip_accents, tokenize_cjk, 100, false,
                                                 128, "max_length", 0))
            .tokenize(s);
      },
      py::arg("text"), py::arg("lowercase") = true, py::arg("strip_accents") = py::none(),
      py::arg("tokenize_cjk") = true,
      "BERT's basic tokenization (whitespace, punctuation, lower-casing, accents) of a text into "
      "words.");

  t.def(
      "build_wordpiece_vocab",
      [](const std::vector<std::string>& texts, int64_t vocab_size, int64_t min_frequency,
         int64_t limit_alphabet, std::vector<std::string> special_tokens, bool lowercase) {
        auto opts = text::VocabBuilderOptions()
                        .vocab_size(vocab_size)
                        .min_frequency(min_frequency)
                        .limit_alphabet(limit_alphabet)
                        .special_tokens(std::move(special_tokens))
                        .tokenizer(text::WordPieceOptions().lowercase(lowercase));
        py::gil_scoped_release release;
        return text::build_wordpiece_vocab(texts, opts);
      },
      py::arg("texts"), py::arg("vocab_size") = 8000, py::arg("min_frequency") = 2,
      py::arg("limit_alphabet") = 1000,
      py::arg("special_tokens") =
          std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"},
      py::arg("lowercase") = true,
      "A WordPiece vocabulary (special tokens, characters, then merged word pieces) learnt from "
      "texts.");
  t.def("save_vocab", &text::save_vocab, py::arg("vocab"), py::arg("path"),
        "Writes a vocabulary as vocab.txt (one token per line).");

  t.def(
      "extract_sections",
      [](const std::string& report) {
        auto s = text::extract_sections(report);
        py::dict d;
        d["findings"] = s.findings;
        d["impression"] = s.impression;
        d["preamble"] = s.preamble;
        d["other"] = s.other;
        d["combined"] = s.combined;
        d["has_headers"] = s.has_headers;
        return d;
      },
      py::arg("report"),
      "The FINDINGS / IMPRESSION / other sections of a radiology report, as a dict.");
  t.def(
      "pretraining_text",
      [](const std::string& report, const std::string& fallback, bool remove_deid) {
        text::ReportTextOptions o;
        if (fallback == "last_section") {
          o.fallback = text::MissingSectionFallback::kLastSection;
        } else if (fallback == "whole_if_unstructured") {
          o.fallback = text::MissingSectionFallback::kWholeIfUnstructured;
        } else {
          CONVIRT_CHECK_VALUE(fallback == "empty", "fallback must be 'last_section', ",
                              "'whole_if_unstructured' or 'empty', got '", fallback, "'");
          o.fallback = text::MissingSectionFallback::kEmpty;
        }
        o.remove_deid_placeholders = remove_deid;
        return text::pretraining_text(report, o);
      },
      py::arg("report"), py::arg("fallback") = "last_section",
      py::arg("remove_deid_placeholders") = true,
      "The text ConVIRT trains on: FINDINGS + IMPRESSION, with a fallback when both are missing.");
  t.def(
      "clean_whitespace", [](const std::string& s) { return text::clean_whitespace(s); },
      py::arg("text"), "Collapses runs of whitespace into single spaces and trims the ends.");
  t.def(
      "count_tokens", [](const std::string& s) { return text::count_tokens(s); }, py::arg("text"),
      "Number of whitespace-separated tokens.");
  t.def(
      "keep_for_pretraining",
      [](const std::string& s, std::size_t min_tokens) {
        return text::keep_for_pretraining(s, min_tokens);
      },
      py::arg("text"), py::arg("min_tokens") = 3,
      "Whether a text has at least min_tokens tokens (the paper drops shorter reports).");
  t.def(
      "is_valid_utf8", [](const std::string& s) { return text::is_valid_utf8(s); }, py::arg("data"),
      "Whether the bytes are valid UTF-8.");
  t.def(
      "split_sentences",
      [](const std::string& s, bool strip_list_markers, bool drop_empty) {
        text::SentenceSplitOptions o;
        o.strip_list_markers = strip_list_markers;
        o.drop_empty = drop_empty;
        return text::split_sentences(s, o);
      },
      py::arg("text"), py::arg("strip_list_markers") = true, py::arg("drop_empty") = true,
      "Splits report text into sentences (abbreviation- and number-aware).");
  t.def("sample_sentence_index", &text::sample_sentence_index, py::arg("n"), py::arg("seed"),
        py::arg("example"), py::arg("step"),
        "The sentence index an example draws at a step: uniform, a pure function of (n, seed, "
        "example, step).");
}

}  // namespace convirt::python
