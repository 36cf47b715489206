// Embeddings out and search over them: shapes and recorded entries, .npy output NumPy can read, a
// run interrupted half way that resumes and equals a one-shot run, refusal to mix parts of another
// model or input list, a briefly pretrained model whose text search ranks images with the finding
// above those without, and `convirt embed` / `convirt search` run as a user runs them.
#include <convirt/data/csv.h>
#include <convirt/eval/metrics.h>
#include <convirt/io/safetensors.h>
#include <convirt/pipeline/embed.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/zero_shot.h>

#include <sys/wait.h>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures.h"
#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace pl = convirt::pipeline;
namespace fs = std::filesystem;
using namespace convirt;

namespace {

// An untrained small checkpoint with a vocabulary beside it, 12 band images in two subfolders and
// three texts.
struct SmallSetup {
  test::TempDir dir{"convirt-embed"};
  std::string model, images, texts;
  SmallSetup() {
    model = (dir / "run" / "model.pt").string();
    fs::create_directories(dir / "run");
    test::write_small_model(model);
    test::write_text_file(dir / "run" / "vocab.txt",
                          "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nsmall\nlarge\neffusion\nno\n.\n");
    for (int64_t i = 0; i < 12; ++i) {
      test::write_band_png(dir / "img" / (i < 6 ? "a" : "b") / ("x" + std::to_string(i) + ".png"),
                           i % 3, i);
    }
    images = (dir / "img").string();
    texts = (dir / "texts.txt").string();
    test::write_text_file(texts, "small effusion .\n\nno effusion .\n  large effusion .  \n");
  }
  pl::EmbedOptions options(const std::string& out) const {
    return pl::EmbedOptions(model).images(images).texts(texts).out(out).workers(1).batch_size(4);
  }
};

}  // namespace

TEST_CASE("embed writes projected and encoder embeddings with the paths and texts recorded",
          "[pipeline][embed]") {
  SmallSetup s;
  const std::string out = (s.dir / "emb.safetensors").string();
  std::vector<pl::EmbedProgress> progress;
  auto r = pl::embed(s.options(out).features("both").shard_size(5),
                     [&](const pl::EmbedProgress& p) { progress.push_back(p); });
  CHECK(r.files == std::vector<std::string>{out});
  CHECK(r.image_paths.size() == 12);
  CHECK(r.image_paths.front() == (s.dir / "img" / "a" / "x0.png").string());  // sorted
  CHECK(r.texts ==
        std::vector<std::string>{"small effusion .", "no effusion .", "large effusion ."});
  CHECK(r.skipped.empty());
  CHECK(r.resumed == 0);
  CHECK_FALSE(fs::exists(out + ".parts"));  // the shards are removed once the file is complete
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back().kind == "texts");
  CHECK(progress.back().done == 3);

  auto file = io::read_safetensors(out);
  auto model = io::load_convirt(s.model);
  model->eval();
  const int64_t d = model->output_dim();
  CHECK(file.tensors["image_embeddings"].sizes() == torch::IntArrayRef({12, d}));
  CHECK(file.tensors["image_features"].sizes() ==
        torch::IntArrayRef({12, model->image_encoder->output_dim()}));
  CHECK(file.tensors["text_embeddings"].sizes() == torch::IntArrayRef({3, d}));
  CHECK(file.tensors["text_features"].sizes() ==
        torch::IntArrayRef({3, model->config().bert().config().hidden_size()}));
  CHECK(file.metadata["format"] == "convirt-embeddings");
  CHECK(nlohmann::json::parse(file.metadata["image_paths"]).size() == 12);
  CHECK(file.metadata["image_size"] == "32");  // the checkpoint's

  // The rows are the model's own outputs on the eval-preprocessed images and tokenised texts.
  torch::NoGradGuard no_grad;
  auto x = pl::eval_transform(32)(image::read_image(r.image_paths[7]), 0).unsqueeze(0);
  CHECK(
      torch::allclose(file.tensors["image_embeddings"][7], model->encode_image(x)[0], 1e-4, 1e-5));
  auto tok = text::WordPieceTokenizer::from_vocab_file((s.dir / "run" / "vocab.txt").string());
  auto enc = tok.encode_batch({"no effusion ."}, model->config().max_length());
  CHECK(torch::allclose(file.tensors["text_embeddings"][1],
                        model->encode_text(enc.input_ids, enc.attention_mask)[0], 1e-4, 1e-5));

  // .npy: one array is the file asked for; the sidecar holds the paths.
  auto npy = pl::embed(pl::EmbedOptions(s.model).images(s.images).out((s.dir / "v.npy").string()));
  CHECK(npy.files ==
        std::vector<std::string>{(s.dir / "v.npy").string(), (s.dir / "v.json").string()});
  const std::string bytes = test::read_text(s.dir / "v.npy");
  CHECK(bytes.substr(0, 6) == "\x93NUMPY");
  CHECK_THAT(bytes.substr(10, 80), Catch::Contains("'shape': (12, " + std::to_string(d) + ")"));
  CHECK(bytes.size() == 128 + static_cast<size_t>(12 * d * 4));
  auto side = nlohmann::json::parse(test::read_text(s.dir / "v.json"));
  CHECK(side["image_paths"].size() == 12);
  // Several arrays: one .npy each.
  auto both = pl::embed(s.options((s.dir / "w.npy").string()).features("both"));
  CHECK(both.files.size() == 5);
  CHECK(fs::exists(s.dir / "w.text_features.npy"));

  // A CSV list of paths, relative to the CSV's folder.
  test::write_text_file(s.dir / "img" / "list.csv", "path,label\na/x1.png,1\nb/x7.png,0\n");
  auto csv = pl::embed(pl::EmbedOptions(s.model)
                           .images((s.dir / "img" / "list.csv").string())
                           .out((s.dir / "c.safetensors").string()));
  REQUIRE(csv.image_paths.size() == 2);
  CHECK(csv.image_paths[1] == (s.dir / "img" / "b" / "x7.png").string());
  // The folder's rows are in sorted path order: b/x10 and b/x11 come before b/x7.
  const auto row = std::find(r.image_paths.begin(), r.image_paths.end(), csv.image_paths[1]) -
                   r.image_paths.begin();
  CHECK(row == 9);
  CHECK(torch::allclose(
      io::read_safetensors((s.dir / "c.safetensors").string()).tensors["image_embeddings"][1],
      file.tensors["image_embeddings"][row], 1e-5, 1e-6));
}

TEST_CASE("embed resumes an interrupted run to the one-shot result and refuses to mix",
          "[pipeline][embed]") {
  SmallSetup s;
  // An unreadable image is skipped and listed, not fatal.
  test::write_text_file(s.dir / "img" / "b" / "broken.png", "not a png");
  const std::string one = (s.dir / "one.safetensors").string();
  auto full = pl::embed(s.options(one).shard_size(4));
  CHECK(full.image_paths.size() == 12);
  REQUIRE(full.skipped.size() == 1);
  CHECK_THAT(full.skipped[0], Catch::Contains("broken.png"));

  const std::string out = (s.dir / "two.safetensors").string();
  struct Interrupt {};
  int64_t seen = 0;
  // Stop in the middle of the second shard of images: the first shard is saved, the rest is not.
  CHECK_THROWS_AS(pl::embed(s.options(out).shard_size(4),
                            [&](const pl::EmbedProgress& p) {
                              if (p.kind == "images" && p.done > 4) throw Interrupt{};
                              seen = p.done;
                            }),
                  Interrupt);
  CHECK(seen == 4);
  CHECK_FALSE(fs::exists(out));
  CHECK(fs::exists(out + ".parts/images-000000.safetensors"));
  CHECK_FALSE(fs::exists(out + ".parts/images-000001.safetensors"));

  // Another input list, another model or other features are refused, and the parts are kept.
  CHECK_THROWS_WITH(
      pl::embed(s.options(out).shard_size(4).texts("")),
      Catch::Contains("another list of images or texts") && Catch::Contains(out + ".parts"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).shard_size(4).features("both")),
                    Catch::Contains("other --features"));
  const std::string other = (s.dir / "run" / "other.pt").string();
  {
    torch::manual_seed(1);
    auto config = models::small_preset(64);
    config.image_size(32);
    io::save_convirt(*models::make_convirt(config), other);
  }
  auto changed = s.options(out).shard_size(4);
  changed.model_path(other);
  CHECK_THROWS_WITH(pl::embed(changed), Catch::Contains("another model"));

  int64_t resumed = -1;
  auto again = pl::embed(s.options(out).shard_size(4), [&](const pl::EmbedProgress& p) {
    resumed = std::max(resumed, p.resumed);
  });
  CHECK(again.resumed == 4);
  CHECK(resumed == 4);
  CHECK(again.image_paths == full.image_paths);
  CHECK(again.skipped == full.skipped);
  auto a = io::read_safetensors(one), b = io::read_safetensors(out);
  for (const std::string k : {"image_embeddings", "text_embeddings"}) {
    CHECK(torch::equal(a.tensors[k], b.tensors[k]));
  }
  CHECK(a.metadata == b.metadata);
  CHECK_FALSE(fs::exists(out + ".parts"));
}

TEST_CASE("embed and search: bad input names the option, the expected and the actual value",
          "[pipeline][embed]") {
  SmallSetup s;
  const std::string out = (s.dir / "e.safetensors").string();
  CHECK_THROWS_WITH(
      pl::embed(s.options(out).model_path((s.dir / "none.pt").string())),
      Catch::Contains("model must name an existing checkpoint") && Catch::Contains("none.pt"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).images((s.dir / "nope").string())),
                    Catch::Contains("images must name a folder") && Catch::Contains("nope"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).texts((s.dir / "nope.txt").string())),
                    Catch::Contains("texts must name a readable text file"));
  CHECK_THROWS_WITH(
      pl::embed(s.options((s.dir / "e.pt").string())),
      Catch::Contains("out must end in .safetensors or .npy") && Catch::Contains("e.pt"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).features("pooled")),
                    Catch::Contains("features must be") && Catch::Contains("\"pooled\""));
  CHECK_THROWS_WITH(pl::embed(s.options(out).batch_size(0)),
                    Catch::Contains("batch_size must be > 0, got 0"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).images("").texts("")), Catch::Contains("got neither"));
  CHECK_THROWS_WITH(pl::embed(s.options(out).vocab((s.dir / "v.txt").string())),
                    Catch::Contains("vocab: no such file"));

  pl::embed(s.options(out));
  auto q = pl::SearchOptions(out).text("small effusion .");
  CHECK_THROWS_WITH(pl::search(pl::SearchOptions(out).k(3)),
                    Catch::Contains("exactly one query") && Catch::Contains("neither"));
  CHECK_THROWS_WITH(pl::search(pl::SearchOptions(out).text("a").image("b")),
                    Catch::Contains("got both"));
  CHECK_THROWS_WITH(pl::search(pl::SearchOptions(out).text("a").k(0)),
                    Catch::Contains("k must be > 0, got 0"));
  CHECK_THROWS_WITH(
      pl::search(pl::SearchOptions((s.dir / "none.safetensors").string()).text("a")),
      Catch::Contains("index must name an existing") && Catch::Contains("none.safetensors"));
  CHECK_THROWS_WITH(
      pl::search(pl::SearchOptions(out).image((s.dir / "missing.png").string())),
      Catch::Contains("image must name an image file") && Catch::Contains("missing.png"));
  // An index of another model width: named, with both widths.
  io::write_safetensors((s.dir / "wide.safetensors").string(),
                        {{"image_embeddings", torch::randn({2, 7})}},
                        {{"format", "convirt-embeddings"},
                         {"model", s.model},
                         {"model_sha", "0"},
                         {"features", "projected"},
                         {"image_size", "32"},
                         {"image_paths", R"(["a.png", "b.png"])"},
                         {"texts", "[]"}});
  CHECK_THROWS_WITH(pl::search(pl::SearchOptions((s.dir / "wide.safetensors").string()).text("a")),
                    Catch::Contains("holds 7-dim embeddings") && Catch::Contains("projects to") &&
                        Catch::Contains("another model"));
  // Another checkpoint of the same width is refused too.
  const std::string other = (s.dir / "run" / "other.pt").string();
  torch::manual_seed(1);
  auto config = models::small_preset(64);
  config.image_size(32);
  io::save_convirt(*models::make_convirt(config), other);
  CHECK_THROWS_WITH(pl::search(q.model_path(other)),
                    Catch::Contains("is not the checkpoint that wrote the index"));
  // Encoder-only files cannot be searched.
  const std::string enc = (s.dir / "enc.safetensors").string();
  pl::embed(s.options(enc).features("encoder"));
  CHECK_THROWS_WITH(pl::search(pl::SearchOptions(enc).text("a")),
                    Catch::Contains("holds no image_embeddings") &&
                        Catch::Contains("--features projected or both"));
  CHECK_THROWS_WITH(pl::nearest(torch::randn({3, 4}), torch::randn({5}), 1),
                    Catch::Contains("query must be [4]") && Catch::Contains("[5]"));
}

TEST_CASE("search returns cosine top-k, and image queries find themselves", "[pipeline][embed]") {
  auto [idx, scores] = pl::nearest(torch::tensor({{1.f, 0.f}, {0.f, 2.f}, {3.f, 3.f}, {2.f, 0.f}}),
                                   torch::tensor({1.f, 0.1f}), 10);
  CHECK(idx.size(0) == 4);             // k above N gives N
  CHECK(idx[0].item<int64_t>() == 0);  // ties (rows 0 and 3) in row order
  CHECK(idx[1].item<int64_t>() == 3);
  CHECK(idx[2].item<int64_t>() == 2);
  CHECK(scores[0].item<double>() == Approx(1 / std::sqrt(1.01)));

  SmallSetup s;
  const std::string out = (s.dir / "e.safetensors").string();
  auto r = pl::embed(s.options(out));
  auto hits = pl::search(pl::SearchOptions(out).image(r.image_paths[5]).k(3));
  REQUIRE(hits.size() == 3);
  CHECK(hits[0].rank == 1);
  CHECK(hits[0].item == r.image_paths[5]);
  CHECK(hits[0].score == Approx(1.0).margin(1e-4));
  CHECK(hits[1].score <= hits[0].score);
  auto texts = pl::search(pl::SearchOptions(out).image(r.image_paths[0]).target("texts").k(5));
  CHECK(texts.size() == 3);
}

TEST_CASE("search by a finding's text ranks images with that finding first, and the CLI runs it",
          "[pipeline][embed][cli]") {
  test::TempDir dir("convirt-embed");
  auto synth = pl::ensure_synthetic((dir / "data").string(), data::synthetic::SyntheticOptions()
                                                                 .train_studies(320)
                                                                 .validate_studies(16)
                                                                 .test_studies(2)
                                                                 .lateral_fraction(0)
                                                                 .chexpert_train(2)
                                                                 .chexpert_valid(300)
                                                                 .retrieval_candidates(1)
                                                                 .retrieval_image_queries(1)
                                                                 .retrieval_text_queries(1)
                                                                 .image_size(32)
                                                                 .difficulty(0.1)
                                                                 .prevalence(0.3)
                                                                 .threads(2)
                                                                 .seed(7));
  auto train = pl::load_pairs(synth.mimic_root, "train", pl::eval_transform(32), 1);
  auto val = pl::load_pairs(synth.mimic_root, "validate", pl::eval_transform(32), 1);
  auto tokenizer = pl::build_tokenizer(*train, 400, (dir / "vocab.txt").string());
  const auto c = test::tiny_model_config(tokenizer->vocab_size());
  torch::manual_seed(0);
  train::Pretrainer trainer(models::make_convirt(c), tokenizer, train, val,
                            train::PretrainOptions((dir / "convirt").string())
                                .batch_size(16)
                                .learning_rate(3e-3)
                                .eval_every(100)
                                .max_evals(0)
                                .max_steps(100)
                                .max_length(32)
                                .workers(2)
                                .verbose(false)
                                .seed(1));
  trainer.run();
  const std::string model = (dir / "convirt" / "model.pt").string();
  io::save_convirt(*trainer.model(), model);

  // The labelled images of the synthetic CheXpert split, listed by its CSV ("Path" column, paths
  // relative to the folder above the dataset folder).
  const std::string out = (dir / "emb.safetensors").string();
  auto run = test::run_convirt(
      "embed --model '" + model + "' --images '" + synth.chexpert_valid_csv + "' --image-root '" +
          synth.chexpert_root + "' --out '" + out + "' --workers 1 --shard-size 128",
      dir / "log.txt");
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.output, Catch::Contains("[embed] images 128/300") &&
                             Catch::Contains("embedded 300 images") && Catch::Contains(out));
  auto table = data::read_csv(synth.chexpert_valid_csv);
  auto csv_rows = [&](const std::string& label) {
    std::vector<float> y;
    for (size_t r = 0; r < table.rows.size(); ++r) y.push_back(table.get(r, label) == "1.0");
    return torch::tensor(y);
  };

  // Each finding's first default prompt as the query: the AUC of the search scores against the
  // label (1 = the finding is there) is the chance that an image with it ranks above one without.
  double best_auc = 0, mean_auc = 0;
  const std::vector<std::string> labels = {"Cardiomegaly", "Edema", "Pleural Effusion"};
  for (const auto& label : labels) {
    const std::string query = pl::default_prompts().at(label).positive[0];
    auto hits = pl::search(pl::SearchOptions(out).text(query).k(300));
    REQUIRE(hits.size() == 300);
    auto scores = torch::zeros({300});
    for (const auto& h : hits) scores[h.index] = h.score;
    const double auc = eval::roc_auc(scores, csv_rows(label));
    UNSCOPED_INFO(label << ": AUC " << auc);
    best_auc = std::max(best_auc, auc);
    mean_auc += auc / static_cast<double>(labels.size());
  }
  // Chance is 0.5 (spread near 0.035 for 300 images at 30% prevalence); zero-shot classification
  // with the same 100-step model reaches about 0.7 on the clearest findings.
  CHECK(mean_auc > 0.6);
  CHECK(best_auc > 0.65);

  auto cli = test::run_convirt("search --index '" + out + "' --text '" +
                                   pl::default_prompts().at("Edema").positive[0] + "' -k 4 --json",
                               dir / "log2.txt");
  INFO(cli.output);
  REQUIRE(cli.status == 0);
  auto hits = nlohmann::json::parse(cli.output);
  REQUIRE(hits.size() == 4);
  CHECK(hits[0]["rank"] == 1);
  CHECK(hits[0]["score"].get<double>() >= hits[3]["score"].get<double>());
  CHECK_THAT(hits[0]["item"].get<std::string>(), Catch::Contains("view1_frontal"));
  auto plain =
      test::run_convirt("search --index '" + out + "' --text 'edema' -k 2", dir / "log3.txt");
  CHECK(plain.status == 0);
  CHECK_THAT(plain.output, Catch::StartsWith("  1  ") && Catch::Contains("\n  2  ") &&
                               Catch::Contains("view1_frontal"));

  // Usage errors exit 2; run-time errors exit 1 naming the argument.
  CHECK(test::run_convirt("search --index '" + out + "'", dir / "log4.txt").status == 2);
  CHECK(test::run_convirt("search --index '" + out + "' --text a --image b", dir / "log5.txt")
            .status == 2);
  auto k0 = test::run_convirt("search --index '" + out + "' --text a -k 0", dir / "log6.txt");
  CHECK(k0.status == 2);
  CHECK_THAT(k0.output, Catch::Contains("-k must be > 0, got 0"));
  CHECK(test::run_convirt("embed --model '" + model + "'", dir / "log7.txt").status == 2);
  auto nothing = test::run_convirt("embed --model '" + model + "' --out x.npy", dir / "log9.txt");
  CHECK(nothing.status == 2);
  CHECK_THAT(nothing.output, Catch::Contains("give --images"));
  auto missing = test::run_convirt(
      "embed --model '" + model + "' --images /nonexistent --out x.npy", dir / "log8.txt");
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output,
             Catch::Contains("images must name a folder") && Catch::Contains("/nonexistent"));
}
