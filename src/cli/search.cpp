#include "search.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace convirt::cli {

SearchCommand::SearchCommand(CLI::App* app) {
  app_ = app->add_subcommand(
      "search", "Nearest images (or texts) of a convirt embed file to a text or an image query");
  auto& o = options_;
  app_->add_option("--index", o.index(), "Embeddings file written by convirt embed (.safetensors)")
      ->required();
  auto* text = app_->add_option("--text", o.text(), "Query sentence");
  auto* image = app_->add_option("--image", o.image(), "Query image file");
  text->excludes(image);
  app_->add_option("-k,--k", o.k(), "How many results")->capture_default_str();
  app_->add_option("--target", o.target(), "What to rank: images | texts")->capture_default_str();
  app_->add_option("--model", o.model_path(),
                   "Checkpoint that encodes the query (default: the one recorded in the index)");
  app_->add_option(
      "--vocab", o.vocab(),
      "vocab.txt of the model (default: the one the model carries; for a model without one, "
      "beside the checkpoint or in the folder above)");
  app_->add_flag("--json", json_, "Print the results as a JSON list");
}

int SearchCommand::run() {
  if (options_.text().empty() == options_.image().empty()) {
    std::cerr << "convirt search: give one query, --text or --image\nRun with --help for more "
                 "information.\n";
    return 2;
  }
  if (options_.k() <= 0) {
    std::cerr << "convirt search: -k must be > 0, got " << options_.k() << "\n";
    return 2;
  }
  const auto hits = pipeline::search(options_);
  if (json_) {
    auto out = nlohmann::ordered_json::array();
    for (const auto& h : hits) {
      out.push_back({{"rank", h.rank}, {"score", h.score}, {"index", h.index}, {"item", h.item}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& h : hits) {
    std::printf("%3lld  %.4f  %s\n", static_cast<long long>(h.rank), h.score, h.item.c_str());
  }
  return 0;
}

Subcommand add_search(CLI::App& app) {
  auto command = std::make_shared<SearchCommand>(&app);
  return {command->app(), [command] { return command->run(); }};
}

}  // namespace convirt::cli
