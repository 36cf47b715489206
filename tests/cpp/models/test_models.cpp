// Modules, freezing, the ConVIRT composition (template and registry), configs and checkpoints.
#include "test_util.h"

#include <convirt/io/checkpoint.h>
#include <convirt/io/torch_file.h>
#include <convirt/io/torchvision.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>

#include <catch2/catch.hpp>

#include <fstream>

using namespace convirt;
using namespace convirt::models;
using Catch::Matchers::Contains;

// The models in these tests are tiny: one intra-op thread avoids OpenMP's spin-waiting, which costs
// more than the work when ctest runs several test processes on a 2-core machine.
static const int kTestThreads = [] {
  at::set_num_threads(1);
  return 1;
}();

static_assert(is_image_encoder_v<ResNet>);
static_assert(is_image_encoder_v<ProjectionHead>);
static_assert(is_image_encoder_v<AnyImageEncoder>);
static_assert(is_text_encoder_v<Bert>);
static_assert(is_text_encoder_v<AnyTextEncoder>);
static_assert(!is_image_encoder_v<Bert>);
static_assert(!is_text_encoder_v<ResNet>);
static_assert(!is_image_encoder_v<torch::Tensor>);

namespace {
BertConfig tiny_bert() {
  return BertConfig()
      .vocab_size(64)
      .hidden_size(16)
      .num_hidden_layers(2)
      .num_attention_heads(2)
      .intermediate_size(32)
      .max_position_embeddings(12);
}

ModelConfig tiny_config() {
  return ModelConfig()
      .image_encoder("resnet18")
      .resnet(ResNetOptions(18).base_width(8).in_channels(1))
      .bert(BertOptions(tiny_bert()).frozen_layers(1))
      .projection_dim(8)
      .max_length(12)
      .image_size(32);
}

struct Batch {
  torch::Tensor images, ids, mask;
};
Batch tiny_batch(int64_t b = 4) {
  auto mask = torch::ones({b, 10}, torch::kLong);
  mask.index_put_({0, torch::indexing::Slice(5, torch::indexing::None)}, 0);
  return {torch::randn({b, 1, 32, 32}), torch::randint(1, 64, {b, 10}), mask};
}
}  // namespace

TEST_CASE("ResNet variants have torchvision's widths and reject bad input", "[models][resnet]") {
  CHECK(ResNet(ResNetOptions(18))->output_dim() == 512);
  CHECK(ResNet(ResNetOptions(50).base_width(16))->output_dim() == 512);
  CHECK(ResNet(ResNetOptions(34).layers({1, 1, 1, 1}).base_width(8))->output_dim() == 64);
  ResNet net(ResNetOptions(18).base_width(8));
  CHECK(net->named_parameters().contains("layer2.0.downsample.0.weight"));
  CHECK(net->named_buffers().contains("layer2.0.downsample.1.num_batches_tracked"));
  auto x = torch::randn({2, 3, 40, 40});
  CHECK(net(x).sizes() == std::vector<int64_t>{2, 64});
  CHECK(net->forward_features(x).sizes() == std::vector<int64_t>{2, 64, 2, 2});
  CHECK_THROWS_WITH(net(torch::randn({2, 1, 40, 40})), Contains("must have 3 channel(s)"));
  CHECK_THROWS_WITH(net(torch::randn({3, 40, 40})), Contains("4-D"));
  CHECK_THROWS_WITH(net->classify(x), Contains("num_classes"));
  CHECK_THROWS_WITH(ResNet(ResNetOptions(20)), Contains("18, 34, 50 or 101, got 20"));
  CHECK_THROWS_WITH(ResNet(ResNetOptions(18).in_channels(2)), Contains("1 or 3, got 2"));
  auto copy = std::dynamic_pointer_cast<ResNetImpl>(net->clone());
  REQUIRE(copy);
  net->eval();
  copy->eval();
  CHECK(torch::equal(copy->forward(x), net(x)));
}

TEST_CASE("BERT validates ids, lengths and masks, and freezes what it is told", "[models][bert]") {
  Bert bert(BertOptions(tiny_bert()).frozen_layers(1));
  auto names = bert->named_parameters();
  CHECK(names.contains("embeddings.word_embeddings.weight"));
  CHECK(names.contains("encoder.layer.1.attention.self.query.weight"));
  CHECK(names.contains("encoder.layer.0.attention.output.LayerNorm.bias"));
  CHECK(names.contains("pooler.dense.weight"));
  for (const auto& p : names) {
    INFO(p.key());
    bool trainable = p.key().rfind("encoder.layer.1.", 0) == 0;
    CHECK(p.value().requires_grad() == trainable);
  }
  auto ids = torch::randint(1, 64, {2, 6});
  auto mask = torch::ones({2, 6}, torch::kLong);
  CHECK(bert(ids, mask).sizes() == std::vector<int64_t>{2, 16});
  CHECK_THROWS_WITH(bert(ids.fill_(64), mask),
                    Contains("[0, vocab_size = 64), got values in [64, 64]"));
  CHECK_THROWS_AS(bert(torch::zeros({2, 13}, torch::kLong), torch::ones({2, 13}, torch::kLong)),
                  c10::IndexError);
  CHECK_THROWS_WITH(bert(torch::zeros({2, 13}, torch::kLong), torch::ones({2, 13}, torch::kLong)),
                    Contains("exceeds max_position_embeddings = 12"));
  CHECK_THROWS_WITH(bert(torch::zeros({2, 6}, torch::kLong), torch::ones({2, 5}, torch::kLong)),
                    Contains("attention_mask must have the shape"));
  CHECK_THROWS_AS(bert(torch::zeros({2, 6}, torch::kInt), mask), c10::TypeError);
  auto empty_row = mask.clone();
  empty_row[1].zero_();
  CHECK_THROWS_WITH(bert(torch::zeros({2, 6}, torch::kLong), empty_row),
                    Contains("row 1 is all padding"));
  CHECK_THROWS_WITH(Bert(BertOptions(tiny_bert()).frozen_layers(3)),
                    Contains("frozen_layers must be in [0, num_hidden_layers = 2]"));

  // Max pooling ignores padding: changing padded tokens does not change the output.
  bert->eval();
  auto ids2 = torch::randint(1, 64, {1, 6});
  auto m2 = torch::tensor({{1, 1, 1, 0, 0, 0}});
  auto a = bert(ids2, m2);
  ids2.index_put_({0, torch::indexing::Slice(3, 6)}, 7);
  CHECK(test::max_abs_diff(a, bert(ids2, m2)) < 1e-6);
}

TEST_CASE("ProjectionHead is an MLP or a linear map", "[models][heads]") {
  ProjectionHead mlp(ProjectionHeadOptions(12, 4));
  CHECK(mlp->named_parameters().size() == 4);
  CHECK(mlp->fc1->weight.sizes() == std::vector<int64_t>{12, 12});
  ProjectionHead lin(ProjectionHeadOptions(12, 4).kind(ProjectionKind::kLinear));
  CHECK(lin->named_parameters().size() == 2);
  auto x = torch::randn({3, 12});
  CHECK(test::max_abs_diff(lin(x), torch::addmm(lin->fc1->bias, x, lin->fc1->weight.t())) < 1e-6);
  CHECK(mlp(x).sizes() == std::vector<int64_t>{3, 4});
  CHECK_THROWS_WITH(mlp(torch::randn({3, 5})), Contains("must be [B, 12], got [3, 5]"));
}

TEST_CASE("ConVIRT template and run-time model share modules and checkpoint names",
          "[models][convirt]") {
  auto cfg = tiny_config();
  torch::manual_seed(0);
  ConVIRT<ResNet, Bert> typed(ResNet(cfg.resnet()), Bert(cfg.bert()), 8);
  auto erased = make_convirt(cfg);
  auto typed_names = typed->named_parameters().keys();
  auto erased_names = erased->named_parameters().keys();
  CHECK(typed_names == erased_names);
  CHECK(typed->named_buffers().keys() == erased->named_buffers().keys());
  CHECK(std::find(typed_names.begin(), typed_names.end(), "image_encoder.layer1.0.conv1.weight") !=
        typed_names.end());

  // Weights copied from one to the other give the same embeddings.
  io::load_state_dict(*erased, io::module_state_dict(*typed));
  typed->eval();
  erased->eval();
  auto b = tiny_batch();
  auto [v1, u1] = typed->forward(b.images, b.ids, b.mask);
  auto [v2, u2] = erased->forward(b.images, b.ids, b.mask);
  CHECK(v1.sizes() == std::vector<int64_t>{4, 8});
  CHECK(u1.sizes() == std::vector<int64_t>{4, 8});
  CHECK(torch::equal(v1, v2));
  CHECK(torch::equal(u1, u2));
  CHECK_THROWS_WITH(erased->forward(b.images, b.ids.slice(0, 0, 3), b.mask.slice(0, 0, 3)),
                    Contains("same batch size"));

  // train()/eval() reach the wrapped encoders through the type-erased wrapper.
  erased->train();
  CHECK(erased->image_encoder->inner()->is_training());
  erased->eval();
  CHECK_FALSE(erased->text_encoder->inner()->is_training());
}

TEST_CASE("gradients flow to trainable parameters only", "[models][convirt]") {
  auto model = make_convirt(tiny_config());
  auto b = tiny_batch();
  auto [v, u] = model->forward(b.images, b.ids, b.mask);
  (v * u).sum().backward();
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    bool frozen = p.key().rfind("text_encoder.embeddings.", 0) == 0 ||
                  p.key().rfind("text_encoder.encoder.layer.0.", 0) == 0 ||
                  p.key().rfind("text_encoder.pooler.", 0) == 0;
    CHECK(p.value().requires_grad() == !frozen);
    CHECK(p.value().grad().defined() == !frozen);
  }
}

TEST_CASE("configs round-trip through JSON and the registry names what it knows",
          "[models][config]") {
  auto cfg = tiny_config().head_kind(ProjectionKind::kLinear).text_head_hidden(5);
  auto back = ModelConfig::from_json(cfg.to_json());
  CHECK(back.to_json() == cfg.to_json());
  CHECK(back.resnet().in_channels() == 1);
  CHECK(back.bert().config().hidden_size() == 16);
  CHECK_THROWS_WITH(ModelConfig::from_json(R"({"colour": 1})"),
                    Contains("unknown model config field 'colour'"));
  CHECK_THROWS_WITH(ModelConfig::from_json(R"({"projection_dim": "big"})"), Contains("wrong type"));
  CHECK_THROWS_WITH(make_convirt(ModelConfig(cfg).image_encoder("vgg")),
                    Contains("unknown image encoder 'vgg'"));
  CHECK_THROWS_WITH(preset("huge"), Contains("paper, small"));

  auto paper = paper_preset();
  CHECK(paper.bert().config().num_hidden_layers() == 12);
  CHECK(paper.bert().frozen_layers() == 6);
  CHECK(paper.projection_dim() == 512);
  auto names = image_encoder_names();
  CHECK(std::find(names.begin(), names.end(), "resnet50") != names.end());

  register_image_encoder("tiny_linear_probe_cnn", [](const ModelConfig& c) {
    return AnyImageEncoder(ResNet(ResNetOptions(18)
                                      .layers({1, 1, 1, 1})
                                      .base_width(4)
                                      .in_channels(c.resnet().in_channels())));
  });
  auto custom = make_convirt(ModelConfig(tiny_config()).image_encoder("tiny_linear_probe_cnn"));
  CHECK(custom->image_head->options.in_features() == 32);
}

TEST_CASE("config_from reads a preset name, JSON text or a .json file, and names a bad value",
          "[models][config]") {
  CHECK(config_from("small").to_json() == small_preset().to_json());
  CHECK(is_preset_spec("paper"));

  auto cfg = tiny_config().projection_dim(24);
  const auto text = "  \n" + cfg.to_json();
  CHECK_FALSE(is_preset_spec(text));
  CHECK(config_from(text).to_json() == cfg.to_json());

  test::TempDir dir("config-from");
  const auto path = (dir / "tiny.json").string();
  std::ofstream(path) << cfg.to_json();
  CHECK_FALSE(is_preset_spec(path));
  CHECK(config_from(path).projection_dim() == 24);

  CHECK_THROWS_WITH(config_from("huge", "preset"),
                    Contains("preset: unknown model preset 'huge'; known: paper, small"));
  CHECK_THROWS_WITH(
      config_from((dir / "absent.json").string()),
      Contains("model: cannot read the model config file") && Contains("absent.json"));
  CHECK_THROWS_WITH(config_from(R"({"colour": 1})"),
                    Contains("unknown model config field 'colour'"));
}

TEST_CASE("the paper preset builds ResNet-50 + BERT-base with the paper's heads",
          "[models][convirt][slow]") {
  auto model = make_convirt("paper");
  CHECK(model->image_head->fc1->weight.sizes() == std::vector<int64_t>{2048, 2048});
  CHECK(model->image_head->fc2->weight.sizes() == std::vector<int64_t>{512, 2048});
  CHECK(model->text_head->fc1->weight.sizes() == std::vector<int64_t>{768, 768});
  CHECK(model->text_head->fc2->weight.sizes() == std::vector<int64_t>{512, 768});
  int64_t bert_params = 0;
  for (const auto& p : model->text_encoder->parameters()) bert_params += p.numel();
  CHECK(bert_params == 109482240);  // bert-base-uncased's BertModel, pooler included
}

TEST_CASE("checkpoints rebuild the model and exports open as torchvision and HF",
          "[models][io][convirt]") {
  test::TempDir dir("ckpt");
  auto model = make_convirt(tiny_config());
  model->eval();
  auto b = tiny_batch();
  auto [v, u] = model->forward(b.images, b.ids, b.mask);
  auto path = (dir / "model.safetensors").string();
  io::save_convirt(*model, path);
  auto loaded = io::load_convirt(path);
  loaded->eval();
  CHECK(loaded->config().to_json() == model->config().to_json());
  auto [v2, u2] = loaded->forward(b.images, b.ids, b.mask);
  CHECK(torch::equal(v, v2));
  CHECK(torch::equal(u, u2));
  // Freezing survives the load.
  CHECK_FALSE(loaded->text_encoder->named_parameters()["embeddings.word_embeddings.weight"]
                  .requires_grad());

  // A checkpoint of a different architecture fails by name.
  auto other = make_convirt(ModelConfig(tiny_config()).projection_dim(16));
  CHECK_THROWS_WITH(io::load_convirt_weights(*other, path),
                    Contains("image_head.fc2.weight: expected [16, 64], got [8, 64]"));

  // A base width torchvision has no model for is refused before anything is written; the
  // layout itself (torchvision_state_dict) still round-trips through convirt's loader.
  CHECK_THROWS_WITH(io::export_torchvision(*model, (dir / "r18.pth").string()),
                    Contains("base_width 64") && Contains("got base_width 8"));
  CHECK_FALSE(std::filesystem::exists(dir / "r18.pth"));
  io::write_torch_state_dict(
      (dir / "r18.pth").string(),
      io::torchvision_state_dict(*model->image_encoder->inner_as<ResNetImpl>()));
  ResNet r(ResNetOptions(18).base_width(8).in_channels(1).channel_mode(InputChannelMode::kSum));
  r->eval();
  CHECK(io::load_torchvision_resnet(*r, (dir / "r18.pth").string()).complete());
  CHECK(test::max_abs_diff(r(b.images), model->image_encoder(b.images)) < 1e-5);

  io::export_hf(*model, (dir / "hf").string());
  auto bert = io::load_hf_bert((dir / "hf").string(), BertOptions().frozen_layers(0));
  bert->eval();
  CHECK(test::max_abs_diff(bert(b.ids, b.mask), model->text_encoder(b.ids, b.mask)) < 1e-6);

  CHECK_THROWS_WITH(io::load_convirt((dir / "r18.pth").string()),
                    Contains("8-byte header length") || Contains("not a"));
}
