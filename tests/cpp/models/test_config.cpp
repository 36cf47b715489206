// Model configs as data: the preset files embedded in the library, and a registered encoder's own
// options (image_encoder_options / text_encoder_options) through JSON, the registry and
// checkpoints.
#include "test_util.h"

#include <convirt/io/checkpoint.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace convirt;
using namespace convirt::models;
using Catch::Matchers::Contains;

namespace {

// What paper_preset() and small_preset() returned when they were C++ code, before the presets
// became files: the files must describe the same models, to the byte of the saved config.
const char* const kPaperJson = R"json({
  "image_encoder": "resnet50",
  "resnet": {
    "layers": [],
    "base_width": 64,
    "in_channels": 3,
    "channel_mode": "average",
    "zero_init_residual": false
  },
  "text_encoder": "bert",
  "bert": {
    "config": {
      "architectures": [
        "BertModel"
      ],
      "model_type": "bert",
      "vocab_size": 30522,
      "hidden_size": 768,
      "num_hidden_layers": 12,
      "num_attention_heads": 12,
      "intermediate_size": 3072,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.1,
      "max_position_embeddings": 512,
      "type_vocab_size": 2,
      "layer_norm_eps": 1e-12,
      "pad_token_id": 0,
      "position_embedding_type": "absolute",
      "initializer_range": 0.02
    },
    "pooling": "max",
    "frozen_layers": 6,
    "freeze_embeddings": true,
    "add_pooling_layer": true
  },
  "projection_dim": 512,
  "head_kind": "mlp",
  "image_head_hidden": 0,
  "text_head_hidden": 0,
  "max_length": 128,
  "image_size": 224
})json";
const char* const kSmallJson = R"json({
  "image_encoder": "resnet18",
  "resnet": {
    "layers": [],
    "base_width": 32,
    "in_channels": 1,
    "channel_mode": "average",
    "zero_init_residual": false
  },
  "text_encoder": "bert",
  "bert": {
    "config": {
      "architectures": [
        "BertModel"
      ],
      "model_type": "bert",
      "vocab_size": 2048,
      "hidden_size": 128,
      "num_hidden_layers": 2,
      "num_attention_heads": 2,
      "intermediate_size": 512,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.1,
      "max_position_embeddings": 64,
      "type_vocab_size": 2,
      "layer_norm_eps": 1e-12,
      "pad_token_id": 0,
      "position_embedding_type": "absolute",
      "initializer_range": 0.02
    },
    "pooling": "max",
    "frozen_layers": 0,
    "freeze_embeddings": false,
    "add_pooling_layer": true
  },
  "projection_dim": 128,
  "head_kind": "mlp",
  "image_head_hidden": 0,
  "text_head_hidden": 0,
  "max_length": 64,
  "image_size": 64
})json";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A user image encoder whose architecture comes only from its options.
struct OptionsCnnImpl : torch::nn::Module {
  OptionsCnnImpl(int64_t in_channels, int64_t width)
      : conv(register_module("conv",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, width, 3)))),
        width_(width) {}
  torch::Tensor forward(torch::Tensor x) {
    return torch::adaptive_avg_pool2d(torch::relu(conv(x)), {1, 1}).flatten(1);
  }
  int64_t output_dim() const { return width_; }
  torch::nn::Conv2d conv;
  int64_t width_;
};
TORCH_MODULE(OptionsCnn);

ModelConfig tiny_text(ModelConfig c) {
  return c
      .bert(BertOptions(BertConfig()
                            .vocab_size(32)
                            .hidden_size(16)
                            .num_hidden_layers(1)
                            .num_attention_heads(2)
                            .intermediate_size(32)
                            .max_position_embeddings(8))
                .frozen_layers(0))
      .projection_dim(8)
      .max_length(8)
      .image_size(16);
}

}  // namespace

TEST_CASE("presets are the embedded JSON files and equal the C++ configs they replaced",
          "[models][config][presets]") {
  CHECK(preset_names() == std::vector<std::string>{"paper", "small"});
  CHECK(preset("paper").to_json() == kPaperJson);
  CHECK(paper_preset().to_json() == kPaperJson);
  CHECK(preset("small").to_json() == kSmallJson);
  CHECK(small_preset().to_json() == kSmallJson);

  const auto paper = preset("paper");
  CHECK(paper.image_encoder() == "resnet50");
  CHECK(paper.resnet().depth() == 50);
  CHECK(paper.image_channels() == 3);
  CHECK(paper.bert().config().num_hidden_layers() == 12);
  CHECK(paper.bert().frozen_layers() == 6);
  CHECK(paper.bert().freeze_embeddings());
  CHECK(paper.bert().pooling() == BertPooling::kMax);
  CHECK(paper.projection_dim() == 512);
  CHECK(paper.max_length() == 128);
  CHECK(paper.image_size() == 224);

  const auto small = small_preset(1234);
  CHECK(small.image_encoder() == "resnet18");
  CHECK(small.resnet().depth() == 18);
  CHECK(small.resnet().base_width() == 32);
  CHECK(small.image_channels() == 1);
  CHECK(small.bert().config().vocab_size() == 1234);
  CHECK(small.bert().config().hidden_size() == 128);
  CHECK(small.bert().frozen_layers() == 0);
  CHECK_FALSE(small.bert().freeze_embeddings());
  CHECK(small.projection_dim() == 128);
  CHECK(small.max_length() == 64);
  CHECK(small.image_size() == 64);
  CHECK(preset("small").bert().config().vocab_size() == 2048);

  // Every file in the source tree parses, builds a config and is what the library embedded (a
  // stale build would embed an older text).
  for (const auto& name : preset_names()) {
    INFO("preset " << name);
    const auto file =
        std::filesystem::path(CONVIRT_SOURCE_DIR) / "src/models/presets" / (name + ".json");
    REQUIRE(std::filesystem::exists(file));
    CHECK(ModelConfig::from_json(read_text(file)).to_json() == preset(name).to_json());
    CHECK(config_from(file.string()).to_json() == preset(name).to_json());
  }
  CHECK_THROWS_WITH(preset("tiny"), Contains("unknown model preset 'tiny'; known: paper, small"));
}

TEST_CASE("encoder options are data: JSON round trip, the registry factory and checkpoints",
          "[models][config][registry]") {
  // Configs without options keep the exact text they had (and so old checkpoints their bytes).
  CHECK(small_preset().to_json().find("encoder_options") == std::string::npos);
  CHECK(ModelConfig::from_json(kSmallJson).to_json() == kSmallJson);

  register_image_encoder("test_options_cnn", [](const ModelConfig& c) {
    const auto o = nlohmann::json::parse(c.image_encoder_options());
    return AnyImageEncoder(
        OptionsCnn(o.at("in_channels").get<int64_t>(), o.at("width").get<int64_t>()));
  });
  auto cfg = tiny_text(ModelConfig()
                           .image_encoder("test_options_cnn")
                           .image_encoder_options(R"({"width": 6, "in_channels": 2})")
                           .text_encoder_options(R"({"note": "kept"})"));
  CHECK(cfg.image_channels() == 2);
  const auto back = ModelConfig::from_json(cfg.to_json());
  CHECK(back.to_json() == cfg.to_json());
  CHECK(nlohmann::json::parse(back.image_encoder_options()) ==
        nlohmann::json::parse(R"({"in_channels": 2, "width": 6})"));
  CHECK(nlohmann::json::parse(back.text_encoder_options())["note"] == "kept");
  CHECK(back.image_channels() == 2);

  auto model = make_convirt(back);
  CHECK(model->image_encoder->output_dim() == 6);
  CHECK(model->image_head->options.in_features() == 6);

  test::TempDir dir("encoder-options");
  const auto path = (dir / "model.safetensors").string();
  io::save_convirt(*model, path);
  CHECK(io::read_convirt_config(path).to_json() == cfg.to_json());
  auto loaded = io::load_convirt(path);
  model->eval();
  loaded->eval();
  const auto images = torch::randn({3, 2, 16, 16});
  CHECK(torch::equal(model->encode_image(images), loaded->encode_image(images)));
  CHECK(loaded->config().image_channels() == 2);
}

TEST_CASE("image_channels answers for built-in and user encoders, and names what is missing",
          "[models][config]") {
  CHECK(ModelConfig().image_channels() == 3);
  CHECK(ModelConfig()
            .image_encoder("resnet101")
            .resnet(ResNetOptions(101).in_channels(1))
            .image_channels() == 1);
  // The built-in ResNets take their channels from `resnet`, whatever the options say.
  CHECK(ModelConfig().image_encoder_options(R"({"in_channels": 5})").image_channels() == 3);

  const auto user = ModelConfig().image_encoder("my_cnn");
  CHECK_THROWS_WITH(user.image_channels(), Contains("image encoder 'my_cnn' is not built in") &&
                                               Contains("\"in_channels\"") &&
                                               Contains("got no image_encoder_options"));
  CHECK_THROWS_WITH(
      ModelConfig(user).image_encoder_options(R"({"width": 4})").image_channels(),
      Contains("must hold \"in_channels\" as an integer >= 1, got no \"in_channels\""));
  CHECK_THROWS_WITH(
      ModelConfig(user).image_encoder_options(R"({"in_channels": "1"})").image_channels(),
      Contains("as an integer >= 1, got \"1\""));
  CHECK_THROWS_WITH(
      ModelConfig(user).image_encoder_options(R"({"in_channels": 0})").image_channels(),
      Contains("as an integer >= 1, got 0"));

  CHECK_THROWS_WITH(ModelConfig::from_json(R"({"image_encoder_options": [1]})"),
                    Contains("'image_encoder_options' must be a JSON object, got [1]"));
  CHECK_THROWS_WITH(ModelConfig::from_json(R"({"text_encoder_options": "x"})"),
                    Contains("'text_encoder_options' must be a JSON object"));
  CHECK_THROWS_WITH(ModelConfig().text_encoder_options("{oops").to_json(),
                    Contains("'text_encoder_options' must be the text of a JSON object"));
  // A factory never sees options that are not a JSON object.
  CHECK_THROWS_WITH(
      make_convirt(tiny_text(ModelConfig().image_encoder("resnet18").image_encoder_options("[]"))),
      Contains("'image_encoder_options' must be a JSON object, got '[]'"));
}
