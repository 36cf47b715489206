// torchvision and Hugging Face weight layouts, and whole-model checkpoints.
#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/version.h>
#include <convirt/io/checkpoint.h>
#include <convirt/io/hf.h>
#include <convirt/io/safetensors.h>
#include <convirt/io/torch_file.h>
#include <convirt/io/torchvision.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace convirt::io {
namespace fs = std::filesystem;

namespace {
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open '", path, "' for reading");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_text(const fs::path& path, const std::string& text) {
  write_file_atomically(path.string(), text, "Hugging Face model file");
}
}  // namespace

// ---------------------------------------------------------------- torchvision
LoadReport load_torchvision_resnet(models::ResNetImpl& net, const std::string& path,
                                   const TorchvisionLoadOptions& options) {
  return load_torchvision_resnet(net, read_state_dict(path), options);
}

LoadReport load_torchvision_resnet(models::ResNetImpl& net, StateDict state,
                                   const TorchvisionLoadOptions& options) {
  std::vector<std::string> skipped, converted;
  if (net.fc.is_empty() && options.skip_classifier()) {
    StateDict kept;
    for (const auto& item : state) {
      if (starts_with(item.key(), "fc.")) {
        skipped.push_back(item.key());
      } else {
        kept.insert(item.key(), item.value());
      }
    }
    state = std::move(kept);
  }
  if (auto* w = state.find("conv1.weight")) {
    const int64_t want = net.conv1->weight.size(1);
    if (w->dim() == 4 && w->size(1) == 3 && want == 1) {
      *w = net.options.channel_mode() == models::InputChannelMode::kSum ? w->sum(1, true)
                                                                        : w->mean(1, true);
      converted.push_back("conv1.weight (RGB -> 1 channel, " +
                          models::to_string(net.options.channel_mode()) + ")");
    }
  }
  auto report = load_state_dict(net, state, options.strict());
  report.skipped = std::move(skipped);
  report.converted = std::move(converted);
  return report;
}

StateDict torchvision_state_dict(const models::ResNetImpl& net) {
  StateDict sd = module_state_dict(net);
  if (auto* w = sd.find("conv1.weight")) {
    if (w->size(1) == 1)
      *w = (*w / 3.0).expand({w->size(0), 3, w->size(2), w->size(3)}).contiguous();
  }
  return sd;
}

namespace {

// torchvision builds resnet18/34/50/101/152 with a 64-channel stem and width_per_group 64, and
// wide_resnet50_2/101_2 with the same stem and 128 only inside the bottleneck; a ResNet of another
// base width (the small preset's) or custom block counts has no torchvision model that loads it.
// Checked before anything is written, so no file exists that its target rejects.
void check_torchvision_compatible(const models::ResNetImpl& net) {
  const auto& o = net.options;
  CONVIRT_CHECK_VALUE(o.base_width() == 64,
                      "export to torchvision needs a ResNet of base_width 64 (torchvision's "
                      "resnet18/34/50/101 have 64 stem channels and width_per_group 64; "
                      "wide_resnet50_2/101_2 keep the 64-channel stem with width_per_group 128 "
                      "inside the bottleneck, which convirt's ResNet does not build), got "
                      "base_width ",
                      o.base_width(), "; nothing was written");
  const std::vector<int64_t> standard = o.depth() == 18    ? std::vector<int64_t>{2, 2, 2, 2}
                                        : o.depth() == 101 ? std::vector<int64_t>{3, 4, 23, 3}
                                                           : std::vector<int64_t>{3, 4, 6, 3};
  CONVIRT_CHECK_VALUE(o.layers().empty() || o.layers() == standard,
                      "export to torchvision needs torchvision's block counts for resnet",
                      o.depth(), ", got custom layers ", convirt::detail::shape_str(o.layers()),
                      "; nothing was written");
}

}  // namespace

void save_torchvision_resnet(const models::ResNetImpl& net, const std::string& path) {
  check_torchvision_compatible(net);
  write_torch_state_dict(path, torchvision_state_dict(net));
}

// ---------------------------------------------------------------- Hugging Face BERT
models::BertConfig read_bert_config(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) p /= "config.json";
  CONVIRT_CHECK_VALUE(fs::exists(p), "BERT config '", p.string(), "' not found");
  try {
    return models::BertConfig::from_json(slurp(p.string()));
  } catch (const c10::Error& e) {
    CONVIRT_CHECK_VALUE(false, "in '", p.string(), "': ", e.what_without_backtrace());
  }
  return {};
}

StateDict read_hf_bert_weights(const std::string& path, std::vector<std::string>* skipped) {
  fs::path p(path);
  if (fs::is_directory(p)) {
    if (fs::exists(p / "model.safetensors")) {
      p /= "model.safetensors";
    } else if (fs::exists(p / "pytorch_model.bin")) {
      p /= "pytorch_model.bin";
    } else {
      CONVIRT_CHECK_VALUE(false, "'", path,
                          "' holds neither model.safetensors nor pytorch_model.bin");
    }
  }
  StateDict raw = read_state_dict(p.string());
  bool prefixed = false;
  for (const auto& item : raw) prefixed = prefixed || starts_with(item.key(), "bert.");
  StateDict out;
  for (const auto& item : raw) {
    std::string key = item.key();
    if (prefixed) {
      if (!starts_with(key, "bert.")) {
        if (skipped) skipped->push_back(key);
        continue;
      }
      key = key.substr(5);
    }
    if (key == "embeddings.position_ids" || starts_with(key, "cls.")) {
      if (skipped) skipped->push_back(item.key());
      continue;
    }
    // TF-era checkpoints (the original BERT, ClinicalBERT) name LayerNorm parameters gamma/beta.
    auto ends = [&](const std::string& suffix) {
      return key.size() >= suffix.size() &&
             key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends("LayerNorm.gamma")) key = key.substr(0, key.size() - 5) + "weight";
    if (ends("LayerNorm.beta")) key = key.substr(0, key.size() - 4) + "bias";
    out.insert(key, item.value());
  }
  return out;
}

LoadReport load_hf_bert(models::BertImpl& bert, const std::string& path, bool strict) {
  std::vector<std::string> skipped;
  StateDict sd = read_hf_bert_weights(path, &skipped);
  if (bert.pooler_dense.is_empty()) {
    StateDict kept;
    for (const auto& item : sd) {
      if (starts_with(item.key(), "pooler.")) {
        skipped.push_back(item.key());
      } else {
        kept.insert(item.key(), item.value());
      }
    }
    sd = std::move(kept);
  }
  auto report = load_state_dict(bert, sd, strict);
  report.skipped = std::move(skipped);
  bert.apply_freezing();
  return report;
}

models::Bert load_hf_bert(const std::string& dir, models::BertOptions options) {
  options.config(read_bert_config(dir));
  models::Bert bert(options);
  load_hf_bert(*bert, dir, /*strict=*/true);
  return bert;
}

void save_hf_bert(const models::BertImpl& bert, const std::string& dir,
                  const std::string& vocab_path, HfWeightFormat format) {
  fs::create_directories(dir);
  const auto& cfg = bert.options.config();
  if (!vocab_path.empty()) {
    std::ifstream in(vocab_path);
    CONVIRT_CHECK_VALUE(in.good(), "cannot open vocabulary '", vocab_path, "'");
    std::ostringstream text;
    text << in.rdbuf();
    int64_t lines = 0;
    std::istringstream count(text.str());
    for (std::string line; std::getline(count, line);) ++lines;
    CONVIRT_CHECK_VALUE(lines == cfg.vocab_size(), "vocabulary '", vocab_path, "' has ", lines,
                        " entries but the model's vocab_size is ", cfg.vocab_size());
    write_text(fs::path(dir) / "vocab.txt", text.str());
    // What BertTokenizer.from_pretrained reads besides vocab.txt: convirt's tokenizer settings
    // (lower-casing, accents following it, CJK split, BERT's special tokens), so a HF tokenizer
    // loaded from this folder splits text as the model was trained.
    const std::string specials =
        "  \"unk_token\": \"[UNK]\",\n  \"sep_token\": \"[SEP]\",\n  \"pad_token\": "
        "\"[PAD]\",\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\"\n";
    write_text(fs::path(dir) / "special_tokens_map.json", "{\n" + specials + "}\n");
    write_text(fs::path(dir) / "tokenizer_config.json",
               "{\n  \"tokenizer_class\": \"BertTokenizer\",\n  \"do_lower_case\": true,\n"
               "  \"strip_accents\": null,\n  \"tokenize_chinese_chars\": true,\n"
               "  \"model_max_length\": " +
                   std::to_string(cfg.max_position_embeddings()) + ",\n" + specials + "}\n");
  }
  StateDict sd;
  for (const auto& item : module_state_dict(bert)) sd.insert(item.key(), item.value());
  if (format != HfWeightFormat::kPytorchBin)
    write_safetensors((fs::path(dir) / "model.safetensors").string(), sd, {{"format", "pt"}});
  if (format != HfWeightFormat::kSafetensors)
    write_torch_state_dict((fs::path(dir) / "pytorch_model.bin").string(), sd);
  write_text(fs::path(dir) / "config.json", cfg.to_json());
}

// ---------------------------------------------------------------- whole-model checkpoints
namespace {

// The vocabulary travels as two metadata strings: the tokens one per line (ids are line numbers,
// as in vocab.txt) and the tokenizer's normalisation as a small JSON object.
constexpr const char* kVocabKey = "convirt_vocab";
constexpr const char* kTokenizerKey = "convirt_tokenizer";

std::string join_tokens(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    out += t;
    out += '\n';
  }
  return out;
}

models::VocabularyRecord vocabulary_from_metadata(const std::map<std::string, std::string>& meta,
                                                  const std::string& path) {
  models::VocabularyRecord record;
  auto it = meta.find(kVocabKey);
  if (it == meta.end()) return record;  // written before vocabularies were embedded
  std::istringstream lines(it->second);
  for (std::string line; std::getline(lines, line);) record.tokens.push_back(line);
  auto tok = meta.find(kTokenizerKey);
  if (tok != meta.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(tok->second);
    } catch (const std::exception& e) {
      CONVIRT_CHECK_VALUE(false, "'", path, "': unreadable ", kTokenizerKey,
                          " metadata: ", e.what());
    }
    record.lowercase = j.value("lowercase", true);
    if (j.contains("strip_accents") && j["strip_accents"].is_boolean())
      record.strip_accents = j["strip_accents"].get<bool>();
  }
  return record;
}

}  // namespace

void save_convirt(const models::ConVIRTModelImpl& model, const std::string& path) {
  std::map<std::string, std::string> meta{{"format", "convirt"},
                                          {"convirt_version", convirt::version()},
                                          {"convirt_config", model.config().to_json()}};
  const auto& vocab = model.vocabulary();
  if (!vocab.empty()) {
    nlohmann::json tok;
    tok["lowercase"] = vocab.lowercase;
    tok["strip_accents"] =
        vocab.strip_accents ? nlohmann::json(*vocab.strip_accents) : nlohmann::json(nullptr);
    meta[kVocabKey] = join_tokens(vocab.tokens);
    meta[kTokenizerKey] = tok.dump();
  }
  write_safetensors(path, module_state_dict(model), meta);
}

models::VocabularyRecord read_convirt_vocabulary(const std::string& path) {
  return vocabulary_from_metadata(read_safetensors(path).metadata, path);
}

models::ModelConfig read_convirt_config(const std::string& path) {
  auto file = read_safetensors(path);
  auto it = file.metadata.find("convirt_config");
  CONVIRT_CHECK_VALUE(it != file.metadata.end(), "'", path,
                      "' is not a convirt checkpoint (no convirt_config in its metadata)");
  return models::ModelConfig::from_json(it->second);
}

models::ConVIRTModel load_convirt(const std::string& path) {
  auto file = read_safetensors(path);
  auto it = file.metadata.find("convirt_config");
  CONVIRT_CHECK_VALUE(it != file.metadata.end(), "'", path,
                      "' is not a convirt checkpoint (no convirt_config in its metadata)");
  auto model = models::make_convirt(models::ModelConfig::from_json(it->second));
  load_state_dict(*model, file.tensors, /*strict=*/true);
  model->set_vocabulary(vocabulary_from_metadata(file.metadata, path));
  return model;
}

LoadReport load_convirt_weights(torch::nn::Module& model, const std::string& path, bool strict) {
  return load_state_dict(model, read_state_dict(path), strict);
}

void export_torchvision(const models::ConVIRTModelImpl& model, const std::string& path) {
  auto resnet = model.image_encoder->inner_as<models::ResNetImpl>();
  CONVIRT_CHECK_VALUE(resnet != nullptr,
                      "export_torchvision needs a ResNet image encoder, the model has '",
                      model.config().image_encoder(), "'");
  save_torchvision_resnet(*resnet, path);
}

void export_hf(const models::ConVIRTModelImpl& model, const std::string& dir,
               const std::string& vocab_path, HfWeightFormat format) {
  auto bert = model.text_encoder->inner_as<models::BertImpl>();
  CONVIRT_CHECK_VALUE(bert != nullptr, "export_hf needs a BERT text encoder, the model has '",
                      model.config().text_encoder(), "'");
  if (!vocab_path.empty() || model.vocabulary().empty()) {
    save_hf_bert(*bert, dir, vocab_path, format);
    return;
  }
  // The model's own vocabulary, as the folder's vocab.txt.
  const fs::path embedded = fs::path(dir) / "vocab.txt";
  fs::create_directories(dir);
  write_file_atomically(embedded.string(), join_tokens(model.vocabulary().tokens), "vocabulary");
  save_hf_bert(*bert, dir, embedded.string(), format);
}

}  // namespace convirt::io
