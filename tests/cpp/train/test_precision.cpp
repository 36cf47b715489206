// Device and precision options, the fp16 loss scaler, and the pieces of the paper's initialisation
// that need no Python: SHA-256 of the init files, the ResNet architecture a state_dict describes,
// and the tokenizer of a Hugging Face folder.
#include <convirt/io/state_dict.h>
#include <convirt/models/resnet.h>
#include <convirt/train/initial_weights.h>
#include <convirt/train/precision.h>

#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;

TEST_CASE("precision and device names parse or are refused by name", "[train][precision][cpu]") {
  CHECK(train::parse_precision("bf16") == train::Precision::kBf16);
  CHECK(train::to_string(train::parse_precision(train::kDefaultPrecision)) == "auto");
  CHECK_THROWS_WITH(train::parse_precision("fp8"),
                    Catch::Contains("precision must be one of auto, fp32, bf16, fp16, got 'fp8'"));
  const torch::Device cpu(torch::kCPU);
  // The old behaviour on CPU: fp32 unless asked.
  CHECK(train::resolve_precision(train::Precision::kAuto, cpu) == train::Precision::kFp32);
  CHECK(train::resolve_precision(train::Precision::kAuto, torch::Device(torch::kCUDA, 0)) ==
        train::Precision::kBf16);
  CHECK(train::resolve_precision(train::Precision::kBf16, cpu) == train::Precision::kBf16);
  CHECK_THROWS_WITH(train::resolve_precision(train::Precision::kFp16, cpu),
                    Catch::Contains("precision 'fp16' needs a CUDA device, got device 'cpu'"));
  CHECK(train::resolve_device("cpu") == cpu);
  CHECK_THROWS_WITH(train::resolve_device("tpu"),
                    Catch::Contains("device must be auto, cpu, cuda or cuda:N, got 'tpu'"));
  const int64_t gpus = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  CHECK_THROWS_WITH(train::resolve_device("cuda:" + std::to_string(gpus)),
                    Catch::Contains("is not available"));
  CHECK(train::resolve_device("auto") ==
        (gpus > 0 ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU)));
}

TEST_CASE("bf16 autocast runs on CPU and ends with its scope", "[train][precision][cpu]") {
  auto a = torch::randn({8, 8});
  {
    train::AutocastScope scope(torch::Device(torch::kCPU), train::Precision::kBf16);
    CHECK(torch::mm(a, a).scalar_type() == torch::kBFloat16);
  }
  CHECK(torch::mm(a, a).scalar_type() == torch::kFloat);
  {
    train::AutocastScope scope(torch::Device(torch::kCPU), train::Precision::kFp32);
    CHECK(torch::mm(a, a).scalar_type() == torch::kFloat);
  }
}

TEST_CASE("the loss scaler skips inf gradients and grows after good steps",
          "[train][precision][cpu]") {
  train::GradScaler scaler(8.0, /*growth_interval=*/2);
  auto p = torch::ones({3}, torch::requires_grad());
  (p.sum() * scaler.scale()).backward();
  REQUIRE(scaler.unscale_and_check({p}));
  CHECK(torch::allclose(p.grad(), torch::ones({3})));
  scaler.update(false);
  CHECK(scaler.scale() == 8.0);
  scaler.update(false);
  CHECK(scaler.scale() == 16.0);
  p.mutable_grad().fill_(std::numeric_limits<float>::infinity());
  CHECK_FALSE(scaler.unscale_and_check({p}));
  CHECK(std::isinf(p.grad()[0].item<float>()));  // left as is: the step is skipped
  scaler.update(true);
  CHECK(scaler.scale() == 8.0);
  CHECK(scaler.growth_tracker() == 0);
}

TEST_CASE("file_sha256 matches the FIPS 180-4 test vectors", "[train][init][cpu]") {
  test::TempDir dir("convirt-sha");
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir.path() / name, std::ios::binary) << bytes;
    return (dir.path() / name).string();
  };
  CHECK(train::file_sha256(write("empty", "")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(train::file_sha256(write("abc", "abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(train::file_sha256(
            write("two", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(train::file_sha256(write("million", std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK_THROWS_WITH(train::file_sha256((dir.path() / "absent").string()),
                    Catch::Contains("cannot open"));
}

TEST_CASE("a torchvision state_dict defines the ResNet's depth and width", "[train][init][cpu]") {
  auto check = [](models::ResNetOptions options, const std::string& name,
                  std::vector<int64_t> layers) {
    models::ResNet net(options);
    auto cfg = train::resnet_config_from_state_dict(models::ModelConfig(),
                                                    io::module_state_dict(*net), "file");
    CHECK(cfg.image_encoder() == name);
    CHECK(cfg.resnet().base_width() == options.base_width());
    CHECK(cfg.resnet().layers() == layers);
    CHECK(cfg.resnet().in_channels() == 3);  // the model's, not the file's
  };
  check(models::ResNetOptions(18).base_width(8), "resnet18", {});
  check(models::ResNetOptions(34).base_width(8), "resnet34", {});
  check(models::ResNetOptions(50).base_width(8), "resnet50", {});
  check(models::ResNetOptions(50).base_width(8).layers({1, 2, 1, 1}), "resnet50", {1, 2, 1, 1});
  check(models::ResNetOptions(18).base_width(4).layers({1, 1, 1, 1}), "resnet18", {1, 1, 1, 1});
  io::StateDict junk;
  junk.insert("weight", torch::zeros({2}));
  CHECK_THROWS_WITH(
      train::resnet_config_from_state_dict(models::ModelConfig(), junk, "image_init 'x.pth'"),
      Catch::Contains("image_init 'x.pth' is not a torchvision ResNet state_dict"));
}

TEST_CASE("a Hugging Face folder's tokenizer follows do_lower_case", "[train][init][cpu]") {
  test::TempDir dir("convirt-hf-tok");
  const std::vector<std::string> vocab = {"[PAD]",  "[UNK]",    "[CLS]",   "[SEP]",
                                          "[MASK]", "effusion", "Effusion"};
  {
    std::ofstream out(dir.path() / "vocab.txt");
    for (const auto& t : vocab) out << t << "\n";
    std::ofstream(dir.path() / "config.json") << "{\"model_type\": \"bert\", \"vocab_size\": 7}";
  }
  auto ids = [&](const std::string& tokenizer_config) {
    std::ofstream(dir.path() / "tokenizer_config.json") << tokenizer_config;
    return train::hf_tokenizer(dir.path().string())->encode("Effusion", false);
  };
  CHECK(ids("{\"do_lower_case\": false}") == std::vector<int64_t>{6});
  CHECK(ids("{\"do_lower_case\": true}") == std::vector<int64_t>{5});
  CHECK(ids("{}") == std::vector<int64_t>{5});  // BertTokenizer's default
  std::ofstream(dir.path() / "config.json") << "{\"model_type\": \"bert\", \"vocab_size\": 8}";
  CHECK_THROWS_WITH(ids("{}"),
                    Catch::Contains("vocab.txt has 7 tokens but config.json's vocab_size is 8"));
}
