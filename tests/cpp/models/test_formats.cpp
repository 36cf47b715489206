// Weight formats and the encoders against independent references (torchvision, HF formulas in
// Python).
#include "reference.h"
#include "test_util.h"

#include <convirt/io/checkpoint.h>
#include <convirt/io/hf.h>
#include <convirt/io/safetensors.h>
#include <convirt/io/torch_file.h>
#include <convirt/io/torchvision.h>
#include <convirt/models/bert.h>
#include <convirt/models/resnet.h>

#include <caffe2/serialize/inline_container.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace convirt;
using Catch::Matchers::Contains;

namespace {
io::StateDict sample_tensors() {
  io::StateDict sd;
  sd.insert("f32", torch::randn({3, 4}));
  sd.insert("f64", torch::randn({2}, torch::kDouble));
  sd.insert("f16", torch::randn({5}).to(torch::kHalf));
  sd.insert("bf16", torch::randn({2, 2}).to(torch::kBFloat16));
  sd.insert("i64", torch::arange(6).view({2, 3}));
  sd.insert("u8", torch::randint(0, 255, {7}, torch::kByte));
  sd.insert("bool", torch::rand({4}) > 0.5);
  sd.insert("scalar", torch::tensor(3.5));
  sd.insert("empty", torch::zeros({0, 3}));
  sd.insert("strided", torch::randn({4, 6}).t());
  return sd;
}

void check_same(const io::StateDict& a, const io::StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& item : a) {
    INFO(item.key());
    const auto* other = b.find(item.key());
    REQUIRE(other != nullptr);
    CHECK(other->scalar_type() == item.value().scalar_type());
    CHECK(other->sizes() == item.value().sizes());
    CHECK(torch::equal(*other, item.value()));
  }
}

void truncate_file(const std::filesystem::path& p, double fraction) {
  auto size = std::filesystem::file_size(p);
  std::filesystem::resize_file(p, static_cast<uintmax_t>(size * fraction));
}

// Runs the reference script; false (with a warning) when its Python lacks torch or torchvision.
bool reference_available(const std::string& mode, const test::TempDir& dir) {
  int rc = test::run_reference(mode, dir.path().string());
  if (rc == test::kReferenceUnavailable) {
    WARN("skipped: " << test::reference_python() << " cannot import torch/torchvision");
    return false;
  }
  REQUIRE(rc == 0);
  return true;
}
}  // namespace

TEST_CASE("safetensors round-trips every dtype, shape and metadata", "[models][io]") {
  test::TempDir dir("st");
  auto sd = sample_tensors();
  io::write_safetensors((dir / "a.safetensors").string(), sd, {{"format", "pt"}, {"k", "v"}});
  auto file = io::read_safetensors((dir / "a.safetensors").string());
  check_same(sd, file.tensors);
  CHECK(file.metadata.at("format") == "pt");
  CHECK(file.metadata.at("k") == "v");
  // read_state_dict chooses the format by content.
  check_same(sd, io::read_state_dict((dir / "a.safetensors").string()));
}

TEST_CASE("safetensors rejects truncated and malformed files with the reason", "[models][io]") {
  test::TempDir dir("st");
  auto path = dir / "a.safetensors";
  io::write_safetensors(path.string(), sample_tensors());
  truncate_file(path, 0.9);
  CHECK_THROWS_WITH(io::read_safetensors(path.string()), Contains("truncated"));
  { std::ofstream(dir / "tiny.safetensors") << "abc"; }
  CHECK_THROWS_WITH(io::read_safetensors((dir / "tiny.safetensors").string()), Contains("8-byte"));
  {
    std::ofstream out(dir / "json.safetensors", std::ios::binary);
    std::string header = "{not json";
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
  }
  CHECK_THROWS_WITH(io::read_safetensors((dir / "json.safetensors").string()), Contains("JSON"));
  {
    std::ofstream out(dir / "types.safetensors", std::ios::binary);
    std::string header = R"({"w": {"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}})";
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << "abcd";
  }
  CHECK_THROWS_AS(io::read_safetensors((dir / "types.safetensors").string()), c10::ValueError);
  CHECK_THROWS_WITH(io::read_safetensors((dir / "types.safetensors").string()),
                    Contains("malformed safetensors header"));
  CHECK_THROWS_WITH(io::read_safetensors((dir / "missing.safetensors").string()),
                    Contains("cannot open"));
}

TEST_CASE("torch.save files round-trip through convirt's writer and reader", "[models][io]") {
  test::TempDir dir("tf");
  auto sd = sample_tensors();
  io::write_torch_state_dict((dir / "a.pt").string(), sd);
  check_same(sd, io::read_torch_state_dict((dir / "a.pt").string()));
  check_same(sd, io::read_state_dict((dir / "a.pt").string()));

  truncate_file(dir / "a.pt", 0.5);
  CHECK_THROWS_WITH(io::read_torch_state_dict((dir / "a.pt").string()), Contains("a.pt"));
  { std::ofstream(dir / "legacy.pt") << "\x80\x02garbage"; }
  CHECK_THROWS_WITH(io::read_torch_state_dict((dir / "legacy.pt").string()),
                    Contains("not a torch.save zip"));
}

TEST_CASE("load_state_dict lists missing, unexpected and mismatched keys", "[models][io]") {
  models::ResNet net(models::ResNetOptions(18).base_width(8));
  auto sd = io::module_state_dict(*net);
  auto extra = sd;
  extra.insert("bogus.weight", torch::zeros({1}));
  CHECK_THROWS_WITH(io::load_state_dict(*net, extra), Contains("bogus.weight"));
  auto report = io::load_state_dict(*net, extra, /*strict=*/false);
  CHECK(report.unexpected == std::vector<std::string>{"bogus.weight"});

  io::StateDict partial;
  for (const auto& item : sd)
    if (item.key() != "layer1.0.conv1.weight") partial.insert(item.key(), item.value());
  CHECK_THROWS_WITH(io::load_state_dict(*net, partial), Contains("layer1.0.conv1.weight"));

  auto wrong = sd;
  wrong["bn1.weight"] = torch::zeros({9});
  CHECK_THROWS_WITH(io::load_state_dict(*net, wrong, false),
                    Contains("bn1.weight: expected [8], got [9]"));
}

TEST_CASE("ResNet-18 and ResNet-50 match torchvision in eval and train mode",
          "[models][resnet][reference]") {
  test::TempDir dir("tv");
  if (!reference_available("resnet", dir)) return;
  for (int depth : {18, 50}) {
    const std::string arch = "resnet" + std::to_string(depth);
    INFO(arch);
    auto ref = io::read_torch_state_dict((dir / (arch + "_ref.pt")).string());
    torch::Tensor x = ref["input"];

    models::ResNet net{models::ResNetOptions(depth).num_classes(1000)};
    auto report = io::load_torchvision_resnet(*net, (dir / (arch + ".pth")).string());
    CHECK(report.complete());
    torch::NoGradGuard no_grad;
    net->eval();
    auto tol = [](const torch::Tensor& t) {
      return 1e-4 * std::max(1.0, t.abs().max().item<double>());
    };
    CHECK(test::max_abs_diff(net(x), ref["eval_features"]) < tol(ref["eval_features"]));
    CHECK(test::max_abs_diff(net->classify(x), ref["eval_logits"]) < tol(ref["eval_logits"]));
    net->train();
    CHECK(test::max_abs_diff(net(x), ref["train_features"]) < tol(ref["train_features"]));
    CHECK(test::max_abs_diff(net->bn1->running_mean, ref["train_bn1_running_mean"]) < 1e-5);

    // The encoder form (no classifier) skips fc.* and still loads strictly.
    models::ResNet encoder{models::ResNetOptions(depth)};
    auto enc_report = io::load_torchvision_resnet(*encoder, (dir / (arch + ".pth")).string());
    CHECK(enc_report.skipped == std::vector<std::string>{"fc.weight", "fc.bias"});
    encoder->eval();
    CHECK(test::max_abs_diff(encoder(x), ref["eval_features"]) < tol(ref["eval_features"]));
    CHECK(encoder->output_dim() == ref["eval_features"].size(1));
    if (depth != 18) continue;

    // 1-channel variants: "sum" and "replicate" reproduce torchvision on the grey image made RGB.
    for (auto mode : {models::InputChannelMode::kSum, models::InputChannelMode::kReplicate}) {
      models::ResNet grey(models::ResNetOptions(18).in_channels(1).channel_mode(mode));
      auto r = io::load_torchvision_resnet(*grey, (dir / "resnet18.pth").string());
      CHECK(r.converted.size() == (mode == models::InputChannelMode::kSum ? 1u : 0u));
      grey->eval();
      CHECK(test::max_abs_diff(grey(ref["grey"]), ref["grey_eval_features"]) <
            tol(ref["grey_eval_features"]));
    }
    models::ResNet avg(models::ResNetOptions(18).in_channels(1));
    io::load_torchvision_resnet(*avg, (dir / "resnet18.pth").string());
    auto tv = io::read_torch_state_dict((dir / "resnet18.pth").string());
    CHECK(test::max_abs_diff(avg->conv1->weight, tv["conv1.weight"].mean(1, true)) < 1e-7);

    // The 1-channel export round-trips exactly back into convirt (tests/python/test_models.py
    // checks that torchvision opens it and gives the same features).
    models::ResNet grey(
        models::ResNetOptions(18).in_channels(1).channel_mode(models::InputChannelMode::kSum));
    io::load_torchvision_resnet(*grey, (dir / "resnet18.pth").string());
    io::save_torchvision_resnet(*grey, (dir / "exported.pth").string());
    models::ResNet back(
        models::ResNetOptions(18).in_channels(1).channel_mode(models::InputChannelMode::kSum));
    io::load_torchvision_resnet(*back, (dir / "exported.pth").string());
    CHECK(test::max_abs_diff(back->conv1->weight, grey->conv1->weight) < 1e-6);
  }
}

TEST_CASE("BERT matches the HF-formula reference and round-trips both weight formats",
          "[models][bert][reference]") {
  test::TempDir dir("hf");
  if (!reference_available("bert", dir)) return;
  auto ref = io::read_torch_state_dict((dir / "bert_ref.pt").string());
  auto cfg = io::read_bert_config(dir.path().string());
  CHECK(cfg.hidden_size() == 32);

  models::Bert bert(models::BertOptions(cfg).frozen_layers(0));
  auto report = io::load_hf_bert(*bert, dir.path().string());
  CHECK(report.complete());
  // The checkpoint is BertForPreTraining-style: the "bert." prefix is removed, the rest skipped.
  CHECK(std::find(report.skipped.begin(), report.skipped.end(), "cls.predictions.bias") !=
        report.skipped.end());
  CHECK(std::find(report.skipped.begin(), report.skipped.end(), "bert.embeddings.position_ids") !=
        report.skipped.end());
  bert->eval();
  torch::NoGradGuard no_grad;
  auto ids = ref["input_ids"], mask = ref["attention_mask"];
  auto hidden = bert->forward_hidden(ids, mask);
  // Padded positions are not compared with a tighter bound than real ones: both are defined by HF.
  CHECK(test::max_abs_diff(hidden, ref["hidden"]) < 1e-4);
  CHECK(test::max_abs_diff(bert(ids, mask), ref["max"]) < 1e-4);
  CHECK(test::max_abs_diff(bert->pooler_output(hidden), ref["pooler"]) < 1e-4);
  bert->options.pooling(models::BertPooling::kMean);
  CHECK(test::max_abs_diff(bert(ids, mask), ref["mean"]) < 1e-4);
  bert->options.pooling(models::BertPooling::kCls);
  CHECK(test::max_abs_diff(bert(ids, mask), ref["cls"]) < 1e-4);

  // Save both formats, check them from Python, and reload each into a fresh model.
  auto out = dir / "out";
  {
    std::ofstream vocab(dir / "vocab.txt");
    for (int i = 0; i < 100; ++i) vocab << "tok" << i << "\n";
  }
  io::save_hf_bert(*bert, out.string(), (dir / "vocab.txt").string(), io::HfWeightFormat::kBoth);
  CHECK(std::filesystem::exists(out / "vocab.txt"));
  io::StateDict cpp_out;
  cpp_out.insert("input_ids", ids);
  cpp_out.insert("attention_mask", mask);
  cpp_out.insert("hidden", hidden);
  io::write_torch_state_dict((dir / "cpp_out.pt").string(), cpp_out);
  CHECK(test::run_reference("check_bert", dir.path().string()) == 0);
  for (const char* file : {"model.safetensors", "pytorch_model.bin"}) {
    INFO(file);
    models::Bert again(models::BertOptions(io::read_bert_config(out.string())).frozen_layers(0));
    CHECK(io::load_hf_bert(*again, (out / file).string()).complete());
    again->eval();
    CHECK(test::max_abs_diff(again->forward_hidden(ids, mask), hidden) < 1e-6);
  }
  CHECK_THROWS_WITH(io::save_hf_bert(*bert, (dir / "bad").string(), (dir / "bert_ref.pt").string()),
                    Contains("vocab_size is 100"));
}

TEST_CASE("HF loading reports wrong shapes, missing keys and bad configs by name",
          "[models][bert][io]") {
  test::TempDir dir("hf");
  auto cfg = models::BertConfig()
                 .vocab_size(50)
                 .hidden_size(16)
                 .num_hidden_layers(1)
                 .num_attention_heads(2)
                 .intermediate_size(32)
                 .max_position_embeddings(16);
  models::Bert bert(models::BertOptions(cfg).frozen_layers(0));
  io::save_hf_bert(*bert, dir.path().string());
  auto loaded = io::load_hf_bert(dir.path().string(), models::BertOptions().frozen_layers(1));
  CHECK(loaded->options.config().vocab_size() == 50);
  CHECK_FALSE(loaded->layers[0]->parameters()[0].requires_grad());

  models::Bert bigger(models::BertOptions(models::BertConfig(cfg).vocab_size(60)).frozen_layers(0));
  CHECK_THROWS_WITH(io::load_hf_bert(*bigger, dir.path().string()),
                    Contains("embeddings.word_embeddings.weight: expected [60, 16], got [50, 16]"));
  models::Bert deeper(
      models::BertOptions(models::BertConfig(cfg).num_hidden_layers(2)).frozen_layers(0));
  CHECK_THROWS_WITH(io::load_hf_bert(*deeper, dir.path().string()),
                    Contains("encoder.layer.1.output.dense.weight"));
  auto partial = io::load_hf_bert(*deeper, dir.path().string(), /*strict=*/false);
  CHECK(partial.missing.size() == 16);

  { std::ofstream(dir / "config.json") << R"({"hidden_size": 30, "num_attention_heads": 4})"; }
  CHECK_THROWS_WITH(io::read_bert_config(dir.path().string()), Contains("divisible"));
  CHECK_THROWS_WITH(io::read_hf_bert_weights((dir / "nothing").string()), Contains("cannot open"));
}

// Hostile weight files found or reviewed while fuzzing (fuzz/regressions/): each must be a clear
// error, never undefined behaviour, a huge allocation or a leak.
TEST_CASE("safetensors refuses a shape whose element count overflows", "[models][io][hostile]") {
  test::TempDir dir("st-hostile");
  const auto path = dir / "overflow.safetensors";
  {
    // 2^62 x 4 float32 elements: the byte count wraps around 64 bits.
    const std::string header =
        R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
    const uint64_t n = header.size();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
  }
  CHECK_THROWS_WITH(io::read_safetensors(path.string()), Contains("too large to exist"));
}

TEST_CASE("safetensors refuses integer fields that are not integers", "[models][io][hostile]") {
  test::TempDir dir("st-types");
  auto write = [&](const std::string& header) {
    const auto path = (dir / "t.safetensors").string();
    const uint64_t n = header.size();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    return path;
  };
  // A dimension beyond 64 bits is parsed as a floating-point number; converting it to an integer
  // was undefined behaviour (found by fuzz_safetensors).
  CHECK_THROWS_WITH(
      io::read_safetensors(
          write(R"({"x":{"dtype":"F32","shape":[4611686018427318427387],"data_offsets":[0,0]}})")),
      Contains("not a non-negative 64-bit integer"));
  CHECK_THROWS_WITH(
      io::read_safetensors(write(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}})")),
      Contains("not a non-negative 64-bit integer"));
  CHECK_THROWS_WITH(
      io::read_safetensors(write(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4e30]}})")),
      Contains("data offset that is not a non-negative integer"));
  CHECK_THROWS_WITH(
      io::read_safetensors(write(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})")),
      Contains("data offset that is not a non-negative integer"));
  CHECK_THROWS_WITH(
      io::read_safetensors(write(R"({"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})")),
      Contains("shape that is not an array"));
}

TEST_CASE("the torch.save reader survives self-referencing and lying pickles",
          "[models][io][hostile]") {
  test::TempDir dir("pt-hostile");
  auto archive = [&](const std::string& name, const std::string& pickle) {
    const auto path = (dir / name).string();
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    const std::string storage(16, '\1');
    writer.writeRecord("data/0", storage.data(), storage.size());
    writer.writeEndOfFile();
    return path;
  };
  auto bytes = [](std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s.push_back(static_cast<char>(c));
    return s;
  };
  auto str = [&](const std::string& s) {  // BINUNICODE
    const auto n = static_cast<int>(s.size());
    return bytes({'X', n, 0, 0, 0}) + s;
  };
  // PROTO 2, EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: a list that contains itself.
  CHECK_THROWS_WITH(io::read_torch_state_dict(
                        archive("cycle.bin", bytes({0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.'}))),
                    Contains("does not hold a state dict"));
  // {"w": _rebuild_tensor_v2(storage "0" of 2^62 floats, 0, (2,), (1,), False, None)} over a
  // 16-byte record: 2^62 x 4 bytes wraps to 0, which passed the old size check and then asked
  // for 2^62 elements.
  const std::string lying =
      bytes({0x80, 2, '}'}) + str("w") + "ctorch._utils\n_rebuild_tensor_v2\n" + bytes({'(', '('}) +
      str("storage") + "ctorch\nFloatStorage\n" + str("0") + str("cpu") +
      bytes({0x8a, 8,   0, 0,    0,   0, 0,    0,    0,   0x40, 't', 'Q', 'K',
             0,    'K', 2, 0x85, 'K', 1, 0x85, 0x89, 'N', 't',  'R', 's', '.'});
  CHECK_THROWS_WITH(io::read_torch_state_dict(archive("lying.bin", lying)),
                    Contains("bytes its tensor declares"));
}
