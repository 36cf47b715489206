#include <convirt/core/check.h>
#include <convirt/pipeline/model_text.h>

#include <filesystem>

namespace convirt::pipeline {

namespace fs = std::filesystem;

namespace {

std::string describe(const std::vector<std::string>& tokens) {
  return "fingerprint " + text::vocab_fingerprint(tokens) + ", " + std::to_string(tokens.size()) +
         " tokens";
}

text::WordPieceOptions options_of(const models::VocabularyRecord& record) {
  return text::WordPieceOptions().lowercase(record.lowercase).strip_accents(record.strip_accents);
}

}  // namespace

std::shared_ptr<const text::WordPieceTokenizer> model_tokenizer(
    const models::ConVIRTModelImpl& model, const std::string& vocab_path,
    const std::string& model_path) {
  CONVIRT_CHECK_VALUE(vocab_path.empty() || fs::is_regular_file(vocab_path),
                      "vocab: no such file '", vocab_path, "'");
  const auto& record = model.vocabulary();
  if (!record.empty()) {
    if (!vocab_path.empty()) {
      const auto given = text::WordPieceTokenizer::from_vocab_file(vocab_path);
      CONVIRT_CHECK_VALUE(given.vocab() == record.tokens, "vocab '", vocab_path, "' (",
                          describe(given.vocab()), ") is not the vocabulary the model",
                          model_path.empty() ? std::string() : " '" + model_path + "'",
                          " was trained with (", describe(record.tokens),
                          "); omit vocab to use the model's own");
    }
    return std::make_shared<const text::WordPieceTokenizer>(record.tokens, options_of(record));
  }
  // No embedded vocabulary: an explicit file, or the run folder's.
  std::string path = vocab_path;
  if (path.empty() && !model_path.empty()) {
    const fs::path dir = fs::path(model_path).parent_path();
    for (const auto& candidate : {dir / "vocab.txt", dir.parent_path() / "vocab.txt"}) {
      if (fs::is_regular_file(candidate)) {
        path = candidate.string();
        break;
      }
    }
  }
  CONVIRT_CHECK_VALUE(!path.empty(), "vocab must name the model's vocab.txt: the model",
                      model_path.empty() ? std::string() : " '" + model_path + "'",
                      " carries no vocabulary and there is no vocab.txt beside it");
  auto tokenizer = std::make_shared<const text::WordPieceTokenizer>(
      text::WordPieceTokenizer::from_vocab_file(path));
  const int64_t expected = model.config().bert().config().vocab_size();
  CONVIRT_CHECK_VALUE(
      tokenizer->vocab_size() <= expected, "vocab '", path, "' has ", tokenizer->vocab_size(),
      " tokens but the model's text encoder has vocab_size ", expected, ": is it the model's own?");
  return tokenizer;
}

}  // namespace convirt::pipeline
