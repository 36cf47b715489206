#include <convirt/core/check.h>
#include <convirt/io/hf.h>
#include <convirt/io/torchvision.h>
#include <convirt/train/initial_weights.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace convirt::train {
namespace fs = std::filesystem;

namespace {

// FIPS 180-4 SHA-256, streamed over the file: weights run to hundreds of megabytes.
class Sha256 {
 public:
  void update(const unsigned char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      block_[used_++] = data[i];
      if (used_ == 64) {
        compress();
        used_ = 0;
      }
    }
    bits_ += static_cast<uint64_t>(n) * 8;
  }
  std::string hex() {
    const uint64_t bits = bits_;
    const unsigned char one = 0x80, zero = 0;
    update(&one, 1);
    while (used_ != 56) update(&zero, 1);
    for (int i = 7; i >= 0; --i) block_[used_++] = static_cast<unsigned char>(bits >> (8 * i));
    compress();
    std::string out;
    for (uint32_t h : h_) out += fmt::format("{:08x}", h);
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress() {
    static constexpr std::array<uint32_t, 64> k = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{block_[4 * i]} << 24) | (uint32_t{block_[4 * i + 1]} << 16) |
             (uint32_t{block_[4 * i + 2]} << 8) | uint32_t{block_[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    auto v = h_;
    for (int i = 0; i < 64; ++i) {
      const uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
      const uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
      const uint32_t t1 = v[7] + s1 + ch + k[i] + w[i];
      const uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
      const uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
      const uint32_t t2 = s0 + maj;
      v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
    }
    for (int i = 0; i < 8; ++i) h_[i] += v[i];
  }

  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  size_t used_ = 0;
  uint64_t bits_ = 0;
};

nlohmann::ordered_json source_json(const std::string& path) {
  return {{"path", fs::absolute(path).lexically_normal().string()},
          {"sha256", file_sha256(path)},
          {"bytes", static_cast<int64_t>(fs::file_size(path))}};
}

// The weight file of a HF folder, in read_hf_bert_weights' order of preference.
std::string hf_weight_file(const std::string& dir) {
  CONVIRT_CHECK_VALUE(fs::is_directory(dir), "text_init must be a Hugging Face BERT folder, '", dir,
                      "' is not a folder");
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  }
  CONVIRT_CHECK_VALUE(false, "text_init '", dir,
                      "' holds neither model.safetensors nor pytorch_model.bin");
  return {};
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open '", path.string(), "'");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

void InitialWeightsOptions::validate() const {
  CONVIRT_CHECK_VALUE(image_init_.empty() || fs::is_regular_file(image_init_), "image_init '",
                      image_init_, "' is not a file");
  if (text_init_.empty()) return;
  hf_weight_file(text_init_);
  for (const char* name : {"config.json", "vocab.txt"})
    CONVIRT_CHECK_VALUE(fs::exists(fs::path(text_init_) / name), "text_init '", text_init_,
                        "' has no ", name);
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open '", path, "' for reading");
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    sha.update(reinterpret_cast<const unsigned char*>(buf.data()),
               static_cast<size_t>(in.gcount()));
  }
  return sha.hex();
}

models::ModelConfig resnet_config_from_state_dict(models::ModelConfig config,
                                                  const io::StateDict& state,
                                                  const std::string& what) {
  const auto* conv1 = state.find("conv1.weight");
  CONVIRT_CHECK_VALUE(conv1 != nullptr && conv1->dim() == 4, what,
                      " is not a torchvision ResNet state_dict: it has no 4-D conv1.weight");
  const bool bottleneck = state.contains("layer1.0.conv3.weight");
  std::vector<int64_t> counts;
  for (int stage = 1; stage <= 4; ++stage) {
    int64_t n = 0;
    while (
        state.contains("layer" + std::to_string(stage) + "." + std::to_string(n) + ".conv1.weight"))
      ++n;
    CONVIRT_CHECK_VALUE(n > 0, what, " is not a torchvision ResNet state_dict: it has no layer",
                        stage, ".0.conv1.weight");
    counts.push_back(n);
  }
  // torchvision's named depths; other block counts keep the block type and list the counts.
  const std::vector<int64_t> basic34 = {3, 4, 6, 3};
  int64_t depth = bottleneck ? 50 : 18;
  std::vector<int64_t> layers = counts;
  if (!bottleneck && counts == std::vector<int64_t>{2, 2, 2, 2}) {
    layers.clear();
  } else if (counts == basic34) {
    depth = bottleneck ? 50 : 34;
    layers.clear();
  } else if (bottleneck && counts == std::vector<int64_t>{3, 4, 23, 3}) {
    depth = 101;
    layers.clear();
  }
  CONVIRT_CHECK_VALUE(config.image_encoder().rfind("resnet", 0) == 0,
                      "image_init needs a ResNet image encoder, the model has '",
                      config.image_encoder(), "'");
  config.image_encoder("resnet" + std::to_string(depth));
  config.resnet().depth(depth).layers(layers).base_width(conv1->size(0));
  return config;
}

std::shared_ptr<text::WordPieceTokenizer> hf_tokenizer(const std::string& dir) {
  const fs::path root(dir);
  const fs::path vocab = root / "vocab.txt";
  CONVIRT_CHECK_VALUE(fs::exists(vocab), "text_init '", dir, "' has no vocab.txt");
  text::WordPieceOptions options;
  const fs::path tok_config = root / "tokenizer_config.json";
  if (fs::exists(tok_config)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text(tok_config));
    } catch (const std::exception& e) {
      CONVIRT_CHECK_VALUE(false, "'", tok_config.string(), "' is not valid JSON: ", e.what());
    }
    if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean())
      options.lowercase(j["do_lower_case"].get<bool>());
    if (j.contains("strip_accents") && j["strip_accents"].is_boolean())
      options.strip_accents(j["strip_accents"].get<bool>());
  }
  auto tokenizer = std::make_shared<text::WordPieceTokenizer>(
      text::WordPieceTokenizer::from_vocab_file(vocab.string(), options));
  const int64_t want = io::read_bert_config(dir).vocab_size();
  CONVIRT_CHECK_VALUE(tokenizer->vocab_size() == want, "text_init '", dir, "': vocab.txt has ",
                      tokenizer->vocab_size(), " tokens but config.json's vocab_size is ", want);
  return tokenizer;
}

models::ModelConfig initial_config(models::ModelConfig config, const InitialWeightsOptions& init) {
  init.validate();
  nlohmann::ordered_json provenance = nlohmann::ordered_json::object();
  if (!init.image_init().empty()) {
    config = resnet_config_from_state_dict(config, io::read_state_dict(init.image_init()),
                                           "image_init '" + init.image_init() + "'");
    provenance["image"] = source_json(init.image_init());
    provenance["image"]["format"] = "torchvision";
  }
  if (!init.text_init().empty()) {
    const std::string weights = hf_weight_file(init.text_init());
    CONVIRT_CHECK_VALUE(config.text_encoder() == "bert",
                        "text_init needs the BERT text encoder, the model has '",
                        config.text_encoder(), "'");
    auto bert_config = io::read_bert_config(init.text_init());
    const int64_t n = bert_config.num_hidden_layers();
    const int64_t frozen = init.text_frozen_layers() < 0 ? n / 2 : init.text_frozen_layers();
    CONVIRT_CHECK_VALUE(frozen <= n, "text_frozen_layers must be in [-1, num_hidden_layers = ", n,
                        "], got ", init.text_frozen_layers());
    // A checkpoint saved without HF's pooler (e.g. from BertForMaskedLM) loads without one.
    const auto state = io::read_hf_bert_weights(init.text_init());
    auto& bert = config.bert();
    bert.config(bert_config)
        .frozen_layers(frozen)
        .freeze_embeddings(init.text_frozen_layers() != 0)
        .add_pooling_layer(state.contains("pooler.dense.weight"));
    config.max_length(std::min(config.max_length(), bert_config.max_position_embeddings()));
    provenance["text"] = source_json(weights);
    provenance["text"]["format"] = "huggingface";
    provenance["text"]["folder"] = fs::absolute(init.text_init()).lexically_normal().string();
  }
  if (!init.empty()) config.initial_weights(provenance.dump());
  return config;
}

std::string load_initial_weights(models::ConVIRTModelImpl& model,
                                 const InitialWeightsOptions& init) {
  std::ostringstream log;
  if (!init.image_init().empty()) {
    auto resnet = model.image_encoder->inner_as<models::ResNetImpl>();
    CONVIRT_CHECK_VALUE(resnet != nullptr,
                        "image_init needs a ResNet image encoder, the model has '",
                        model.config().image_encoder(), "'");
    io::LoadReport report;
    try {
      report = io::load_torchvision_resnet(*resnet, init.image_init());
    } catch (const c10::ValueError& e) {
      CONVIRT_CHECK_VALUE(false, "image_init '", init.image_init(),
                          "': ", e.what_without_backtrace());
    }
    log << "image encoder " << model.config().image_encoder() << " (base width "
        << resnet->options.base_width() << ") from " << init.image_init();
    for (const auto& c : report.converted) log << "; " << c;
    log << "\n";
  }
  if (!init.text_init().empty()) {
    auto bert = model.text_encoder->inner_as<models::BertImpl>();
    CONVIRT_CHECK_VALUE(bert != nullptr, "text_init needs a BERT text encoder, the model has '",
                        model.config().text_encoder(), "'");
    try {
      io::load_hf_bert(*bert, init.text_init(), /*strict=*/true);
    } catch (const c10::ValueError& e) {
      CONVIRT_CHECK_VALUE(false, "text_init '", init.text_init(),
                          "': ", e.what_without_backtrace());
    }
    const auto& o = bert->options;
    log << "text encoder BERT " << o.config().num_hidden_layers() << "x" << o.config().hidden_size()
        << " from " << init.text_init() << " (embeddings "
        << (o.freeze_embeddings() ? "frozen" : "trained") << ", first " << o.frozen_layers()
        << " layers frozen)\n";
  }
  return log.str();
}

models::ConVIRTModel make_initialised_model(const models::ModelConfig& config,
                                            const InitialWeightsOptions& init, std::string* log) {
  auto model = models::make_convirt(init.empty() ? config : initial_config(config, init));
  const std::string lines = load_initial_weights(*model, init);
  if (log) *log = lines;
  return model;
}

}  // namespace convirt::train
