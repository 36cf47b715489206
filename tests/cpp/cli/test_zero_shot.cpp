// Zero-shot classification from prompts: the prompt file format and its errors, the scores'
// arithmetic, a briefly pretrained model far above chance on the synthetic data where an untrained
// one is at chance, the results.json section, and `convirt eval zeroshot` run as a user runs it.
#include <convirt/eval/metrics.h>
#include <convirt/eval/tables.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/zero_shot.h>

#include <sys/wait.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace pl = convirt::pipeline;
namespace fs = std::filesystem;
using namespace convirt;

namespace {

const std::vector<std::string> kTaskLabels = {"Atelectasis", "Cardiomegaly", "Edema",
                                              "Pleural Effusion", "Pneumonia"};

// A synthetic set whose labelled test split is large enough for a stable AUC, a vocabulary built
// from its reports, and a tiny model that pretrains in seconds.
struct SyntheticSetup {
  test::TempDir dir{"convirt-zeroshot"};
  data::synthetic::SyntheticSummary synth;
  std::shared_ptr<text::WordPieceTokenizer> tokenizer;
  std::shared_ptr<data::PairedDataset> train, val;

  explicit SyntheticSetup(int64_t train_studies) {
    synth = pl::ensure_synthetic((dir / "data").string(), data::synthetic::SyntheticOptions()
                                                              .train_studies(train_studies)
                                                              .validate_studies(16)
                                                              .test_studies(2)
                                                              .lateral_fraction(0)
                                                              .chexpert_train(2)
                                                              .chexpert_valid(400)
                                                              .retrieval_candidates(1)
                                                              .retrieval_image_queries(1)
                                                              .retrieval_text_queries(1)
                                                              .image_size(32)
                                                              .difficulty(0.1)
                                                              .prevalence(0.3)
                                                              .threads(2)
                                                              .seed(7));
    // No augmentation: at 32 px the paper's crops and blur hide the findings from a 100-step run.
    train = pl::load_pairs(synth.mimic_root, "train", pl::eval_transform(32), 1);
    val = pl::load_pairs(synth.mimic_root, "validate", pl::eval_transform(32), 1);
    tokenizer = pl::build_tokenizer(*train, 400, (dir / "vocab.txt").string());
  }

  models::ConVIRTModel model() const {
    const auto c = test::tiny_model_config(tokenizer->vocab_size());
    torch::manual_seed(0);
    return models::make_convirt(c);
  }

  // Saves the model (untrained, or after `steps` of ConVIRT pretraining) as dir/<name>/model.pt,
  // where zero_shot finds dir/vocab.txt one folder up.
  std::string save(const std::string& name, int64_t steps) const {
    auto m = model();
    if (steps > 0) {
      train::Pretrainer trainer(m, tokenizer, train, val,
                                train::PretrainOptions((dir / name).string())
                                    .batch_size(16)
                                    .learning_rate(3e-3)
                                    .eval_every(steps)
                                    .max_evals(0)
                                    .max_steps(steps)
                                    .max_length(32)
                                    .workers(2)
                                    .verbose(false)
                                    .seed(1));
      trainer.run();
      m = trainer.model();
    }
    fs::create_directories(dir / name);
    const std::string path = (dir / name / "model.pt").string();
    io::save_convirt(*m, path);
    return path;
  }

  pl::ZeroShotOptions options(const std::string& model_path) const {
    return pl::ZeroShotOptions(model_path)
        .test_csv(synth.chexpert_valid_csv)
        .labels(kTaskLabels)
        .workers(2);
  }
};

}  // namespace

TEST_CASE("zero-shot prompt files: format, defaults and errors naming the label and key",
          "[pipeline][zeroshot]") {
  auto p = pl::PromptSet::from_json(
      R"({"labels": {"Edema": {"positive": ["Pulmonary edema."], "negative": ["No edema."]},
                     "normal": {"positive": ["The lungs are clear."]}}})");
  CHECK(p.labels() == std::vector<std::string>{"Edema", "normal"});
  CHECK(p.at("Edema").negative == std::vector<std::string>{"No edema."});
  CHECK(p.at("Normal").positive.size() == 1);  // case-insensitive fallback
  CHECK(p.at("normal").negative.empty());
  CHECK(pl::PromptSet::from_json(p.to_json()).to_json() == p.to_json());
  CHECK_THROWS_WITH(p.at("Cardiomegaly"), Catch::Contains("\"Cardiomegaly\" has no prompts") &&
                                              Catch::Contains("\"Edema\", \"normal\""));

  auto bad = [](const std::string& labels) {
    return pl::PromptSet::from_json(R"({"labels": )" + labels + "}", "p.json");
  };
  CHECK_THROWS_WITH(bad(R"({"Edema": {"negative": ["No edema."]}})"),
                    Catch::Contains("p.json") && Catch::Contains("labels[\"Edema\"]") &&
                        Catch::Contains("missing the key \"positive\""));
  CHECK_THROWS_WITH(
      bad(R"({"Edema": {"positive": []}})"),
      Catch::Contains("labels[\"Edema\"][\"positive\"]") && Catch::Contains("empty list"));
  CHECK_THROWS_WITH(
      bad(R"({"Edema": {"positive": ["Edema."], "negative": []}})"),
      Catch::Contains("labels[\"Edema\"][\"negative\"]") && Catch::Contains("empty list"));
  CHECK_THROWS_WITH(bad(R"({"Edema": {"positive": "Edema."}})"),
                    Catch::Contains("labels[\"Edema\"][\"positive\"]") &&
                        Catch::Contains("must be a list") && Catch::Contains("string"));
  CHECK_THROWS_WITH(bad(R"({"Edema": {"positive": ["Edema.", 3]}})"),
                    Catch::Contains("labels[\"Edema\"][\"positive\"][1] must be a string"));
  CHECK_THROWS_WITH(bad(R"({"Edema": ["Edema."]})"),
                    Catch::Contains("labels[\"Edema\"] must be an object"));
  CHECK_THROWS_WITH(bad(R"({"Edema": {"positive": ["Edema."], "negatives": ["No."]}})"),
                    Catch::Contains("unknown key \"negatives\""));
  CHECK_THROWS_WITH(bad("{}"), Catch::Contains("at least one label"));
  CHECK_THROWS_WITH(pl::PromptSet::from_json(R"({"Edema": {}})", "p.json"),
                    Catch::Contains("p.json") && Catch::Contains("\"labels\" key"));
  CHECK_THROWS_WITH(pl::PromptSet::from_json("{", "p.json"), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(pl::PromptSet::load("/nonexistent/prompts.json"),
                    Catch::Contains("/nonexistent/prompts.json"));

  // The compiled-in defaults are the shipped example file, and they cover every label the
  // library's datasets use.
  const auto shipped =
      pl::PromptSet::load(std::string(CONVIRT_SOURCE_DIR) + "/resources/prompts/default.json");
  CHECK(shipped.to_json() == pl::default_prompts().to_json());
  for (const auto& l : data::chexpert_paper_labels()) CHECK(pl::default_prompts().contains(l));
  for (const auto& l : kTaskLabels) CHECK_FALSE(pl::default_prompts().at(l).negative.empty());
  for (const std::string l : {"COVID-19", "pneumonia", "normal", "Abnormal", "Pneumonia"}) {
    CHECK(pl::default_prompts().contains(l));
  }
}

TEST_CASE("zero-shot scores are cosine similarities of prompt-ensemble embeddings",
          "[pipeline][zeroshot]") {
  test::TempDir tmp("convirt-zeroshot");
  const std::string model_path = (tmp / "model.pt").string();
  test::write_small_model(model_path);
  auto model = io::load_convirt(model_path);
  // write_small_model's text encoder knows 64 tokens.
  test::write_text_file(
      tmp / "vocab.txt",
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nsmall\nlarge\neffusion\nno\nheart\nis\n"
      "enlarged\n.\n");
  auto tok = text::WordPieceTokenizer::from_vocab_file((tmp / "vocab.txt").string());
  pl::PromptSet prompts;
  prompts.set("A", {{"small effusion .", "large effusion ."}, {"no effusion ."}});
  prompts.set("B", {{"heart is enlarged ."}, {}});
  torch::manual_seed(3);
  auto emb = torch::randn({6, model->output_dim()});
  auto ml = pl::zero_shot_scores(model, tok, emb, {"A", "B"}, prompts,
                                 eval::ClassificationTask::kMultiLabel);
  REQUIRE(ml.sizes() == torch::IntArrayRef({6, 2}));

  // The reference: normalise each sentence embedding, average, normalise, cosine with the images.
  torch::NoGradGuard no_grad;
  auto embed = [&](const std::vector<std::string>& s) {
    auto enc = tok.encode_batch(s, model->config().max_length());
    auto u = model->encode_text(enc.input_ids, enc.attention_mask);
    auto m = (u / u.norm(2, 1, true)).mean(0);
    return m / m.norm();
  };
  auto v = emb / emb.norm(2, 1, true);
  auto a = v.matmul(embed({"small effusion .", "large effusion ."})) -
           v.matmul(embed({"no effusion ."}));
  auto b = v.matmul(embed({"heart is enlarged ."}));
  CHECK(torch::allclose(ml.select(1, 0), a, 1e-5, 1e-5));
  CHECK(torch::allclose(ml.select(1, 1), b, 1e-5, 1e-5));
  // Multi-class: positives only (argmax over classes).
  auto mc = pl::zero_shot_scores(model, tok, emb, {"A", "B"}, prompts,
                                 eval::ClassificationTask::kMultiClass);
  CHECK(torch::allclose(mc.select(1, 0), v.matmul(embed({"small effusion .", "large effusion ."})),
                        1e-5, 1e-5));
  CHECK_THROWS_WITH(
      pl::zero_shot_scores(model, tok, emb, {"C"}, prompts, eval::ClassificationTask::kMultiLabel),
      Catch::Contains("\"C\" has no prompts"));
  CHECK_THROWS_WITH(pl::zero_shot_scores(model, tok, emb[0], {"A"}, prompts,
                                         eval::ClassificationTask::kMultiLabel),
                    Catch::Contains("image_emb must be 2-D"));
}

TEST_CASE("zero-shot: a briefly pretrained model is far above chance, the CLI reports it",
          "[pipeline][zeroshot][cli]") {
  SyntheticSetup s(320);
  const std::string trained = s.save("convirt", 100);
  auto r = pl::zero_shot(s.options(trained));
  INFO("per-label AUC " << r.per_label[0] << " " << r.per_label[1] << " " << r.per_label[2] << " "
                        << r.per_label[3] << " " << r.per_label[4]);
  CHECK(r.task == "CheXpert");
  CHECK(r.method == "convirt");
  CHECK(r.metric_name == "mean_auc");
  CHECK(r.images == 400);
  CHECK(r.labels == kTaskLabels);
  // Chance is 0.5 with a spread near 0.02 for the mean over 400 images (the untrained test below);
  // 100 steps from scratch reach about 0.62, the clearest findings (edema, effusion) above 0.7.
  CHECK(r.metric > 0.58);
  CHECK(*std::max_element(r.per_label.begin(), r.per_label.end()) > 0.68);

  // The command line: the same number, printed and written as results.json's zeroshot section.
  const fs::path out = s.dir / "zs.json";
  auto run = test::run_convirt("eval zeroshot --model '" + trained + "' --test-csv '" +
                                   s.synth.chexpert_valid_csv +
                                   "' --labels Atelectasis Cardiomegaly Edema 'Pleural Effusion' "
                                   "Pneumonia --workers 1 --name ConVIRT --out '" +
                                   out.string() + "'",
                               s.dir / "log.txt");
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.output, Catch::Contains("mean_auc") && Catch::Contains("Pleural Effusion"));
  auto saved = eval::Results::load(out.string());
  REQUIRE(saved.zero_shot("ConVIRT", "CheXpert").has_value());
  CHECK(*saved.zero_shot("ConVIRT", "CheXpert") == Approx(100 * r.metric).margin(1e-6));
  CHECK_THAT(test::read_text(out), Catch::Contains("\"zeroshot\""));

  // A prompt file that lacks a label of the dataset fails before any image is read.
  const fs::path prompts = s.dir / "prompts.json";
  test::write_text_file(prompts, R"({"labels": {"Edema": {"positive": ["Edema."]}}})");
  auto bad =
      test::run_convirt("eval zeroshot --model '" + trained + "' --test-csv '" +
                            s.synth.chexpert_valid_csv + "' --prompts '" + prompts.string() + "'",
                        s.dir / "log2.txt");
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("\"Atelectasis\" has no prompts"));
  auto no_vocab = test::run_convirt(
      "eval zeroshot --model '" + trained + "' --vocab /nonexistent.txt", s.dir / "log3.txt");
  CHECK(no_vocab.status == 1);
  CHECK_THAT(no_vocab.output, Catch::Contains("vocab: no such file"));
}

TEST_CASE("zero-shot: an untrained model is at chance", "[pipeline][zeroshot]") {
  SyntheticSetup s(16);
  auto r = pl::zero_shot(s.options(s.save("random", 0)));
  INFO("per-label AUC " << r.per_label[0] << " " << r.per_label[1] << " " << r.per_label[2] << " "
                        << r.per_label[3] << " " << r.per_label[4]);
  // Fixed seeds make this deterministic; 400 images put the spread of a chance AUC near 0.03.
  CHECK(std::abs(r.metric - 0.5) < 0.1);
}

TEST_CASE("zero-shot results: their own results.json section and table", "[eval][zeroshot]") {
  eval::Results results;
  results.set_classification("linear", "ConVIRT", "CheXpert", "1", 80.0);
  const std::string before = results.to_json();
  CHECK(before.find("zeroshot") == std::string::npos);  // absent until set
  results.set_zero_shot("ConVIRT", "CheXpert", 71.25);
  results.set_zero_shot("Random init", "CheXpert", 50.5);
  auto back = eval::Results::from_json(results.to_json());
  CHECK(*back.zero_shot("ConVIRT", "CheXpert") == 71.25);
  CHECK_FALSE(back.zero_shot("ConVIRT", "RSNA").has_value());
  CHECK(back.classification("linear", "ConVIRT", "CheXpert", "1")->mean == 80.0);
  CHECK(back.methods("zeroshot") == std::vector<std::string>{"ConVIRT", "Random init"});
  CHECK_THAT(results.to_json(), Catch::Contains("\"zeroshot\": {\n    \"ConVIRT\": {\n      "
                                                "\"CheXpert\": 71.25"));
  CHECK(eval::format_zero_shot_table(results) ==
        "| Method | CheXpert |\n|---|---|\n| ConVIRT | 71.2 |\n| Random init | 50.5 |\n");
  CHECK_THROWS_WITH(eval::Results::from_json(R"({"zeroshot": {"A": {"CheXpert": "x"}}})"),
                    Catch::Contains("zeroshot.A.CheXpert"));
}

TEST_CASE("zero-shot on each dataset format reports that protocol's metric",
          "[pipeline][zeroshot]") {
  test::TempDir tmp("convirt-zeroshot");
  const std::string model = (tmp / "model.pt").string();
  test::write_small_model(model);
  // write_small_model's text encoder knows 64 tokens; the default prompts' other words are [UNK].
  test::write_text_file(
      tmp / "vocab.txt",
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nno\npleural\neffusion\npneumonia\n.\n");
  test::write_covidx(tmp / "covidx", 3, 24);
  test::write_mura(tmp / "mura", 6);
  test::write_rsna(tmp / "rsna", 60);
  test::write_chexpert(tmp / "chexpert", 3, 30);
  auto opts = [&](pl::DatasetKind kind) {
    return pl::ZeroShotOptions(model).dataset(kind).workers(1).method_name("m");
  };
  auto covidx = pl::zero_shot(opts(pl::DatasetKind::kCovidx).data_root((tmp / "covidx").string()));
  CHECK(covidx.metric_name == "accuracy");
  CHECK(covidx.images == 24);
  CHECK(covidx.labels == std::vector<std::string>{"COVID-19", "pneumonia", "normal"});
  CHECK(covidx.per_label.empty());
  auto mura = pl::zero_shot(opts(pl::DatasetKind::kMura).data_root((tmp / "mura").string()));
  CHECK(mura.metric_name == "group_auc");
  CHECK(mura.images == 24);
  auto mura_image = pl::zero_shot(
      opts(pl::DatasetKind::kMura).data_root((tmp / "mura").string()).mura_level("image"));
  CHECK(mura_image.metric_name == "auc");
  auto rsna = pl::zero_shot(opts(pl::DatasetKind::kRsna).data_root((tmp / "rsna").string()));
  CHECK(rsna.metric_name == "auc");
  CHECK(rsna.images > 0);
  CHECK(rsna.images < 60);  // the test carve-out only
  auto chex = pl::zero_shot(
      opts(pl::DatasetKind::kChexpert)
          .test_csv((tmp / "chexpert" / "CheXpert-v1.0-small" / "valid.csv").string()));
  CHECK(chex.metric_name == "mean_auc");
  CHECK(chex.labels == data::chexpert_paper_labels());
  for (const auto& r : {covidx, mura, mura_image, rsna}) {
    CHECK(r.metric >= 0.0);
    CHECK(r.metric <= 1.0);
  }
  // A ragged table line is refused, naming it, unless skip_bad_rows skips and counts it.
  test::write_text_file(tmp / "covidx" / "test.txt",
                        test::read_text(tmp / "covidx" / "test.txt") + "broken\n");
  const auto covidx_ragged = opts(pl::DatasetKind::kCovidx).data_root((tmp / "covidx").string());
  CHECK_THROWS_WITH(pl::zero_shot(covidx_ragged), Catch::Contains("ragged line"));
  CHECK(pl::zero_shot(pl::ZeroShotOptions(covidx_ragged).skip_bad_rows(true)).images == 24);
  CHECK_THROWS_WITH(pl::zero_shot(opts(pl::DatasetKind::kRsna)),
                    Catch::Contains("data_root must be set for dataset rsna"));
  CHECK_THROWS_WITH(
      pl::zero_shot(opts(pl::DatasetKind::kChexpert)
                        .test_csv((tmp / "chexpert" / "CheXpert-v1.0-small" / "valid.csv").string())
                        .prompts_path((tmp / "missing.json").string())),
      Catch::Contains("missing.json"));
}
