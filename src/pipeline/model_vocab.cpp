#include "model_vocab.h"

#include <convirt/core/check.h>

#include <filesystem>

namespace convirt::pipeline::detail {

namespace fs = std::filesystem;

std::string find_model_vocab(const std::string& vocab, const std::string& model_path) {
  if (!vocab.empty()) {
    CONVIRT_CHECK_VALUE(fs::is_regular_file(vocab), "vocab must name the model's vocab.txt, got '",
                        vocab, "'");
    return vocab;
  }
  const fs::path dir = fs::absolute(model_path).parent_path();
  for (const auto& p : {dir / "vocab.txt", dir.parent_path() / "vocab.txt"}) {
    if (fs::is_regular_file(p)) return p.string();
  }
  CONVIRT_CHECK_VALUE(false,
                      "vocab must name the model's vocab.txt: none was given and there is none "
                      "beside the checkpoint '",
                      model_path, "' or in the folder above it");
  return "";
}

}  // namespace convirt::pipeline::detail
