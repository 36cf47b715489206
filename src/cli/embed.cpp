#include "embed.h"

#include <cstdio>
#include <memory>

namespace convirt::cli {

EmbedCommand::EmbedCommand(CLI::App* app) {
  app_ = app->add_subcommand(
      "embed", "Embeddings of images and/or texts into a .safetensors (or .npy) file; resumable");
  auto& o = options_;
  app_->add_option("--model", o.model_path(), "convirt model checkpoint (model.pt)")->required();
  app_->add_option("--images", o.images(),
                   "Folder of images (.png .jpg .jpeg .dcm, recursive) or CSV of image paths");
  app_->add_option("--image-column", o.image_column(),
                   "CSV: column of the paths (default: path, Path or image, else the first)");
  app_->add_option("--image-root", o.image_root(),
                   "CSV: folder relative paths start from (default: the CSV's folder)");
  app_->add_option("--texts", o.texts(), "Text file, one text per line");
  app_->add_option("--out", o.out(), "Output: NAME.safetensors, or NAME.npy (arrays + NAME.json)")
      ->required();
  app_->add_option("--features", o.features(),
                   "projected (the heads' outputs, what search uses) | encoder | both")
      ->capture_default_str();
  app_->add_option(
      "--vocab", o.vocab(),
      "vocab.txt of the model (default: the one the model carries; for a model without one, "
      "beside the checkpoint or in the folder above)");
  app_->add_option("--image-size", o.image_size(), "Input side in pixels (0: the model's)")
      ->capture_default_str();
  app_->add_option("--batch-size", o.batch_size(), "Images or texts per forward pass")
      ->capture_default_str();
  app_->add_option("--shard-size", o.shard_size(),
                   "Rows per saved shard (a re-run after an interruption resumes from them)")
      ->capture_default_str();
  app_->add_option("--threads", o.threads(), "Intra-op threads (0: all cores)")
      ->capture_default_str();
  app_->add_option("--workers", o.workers(), "Image decoding threads")->capture_default_str();
  app_->add_flag("--quiet", quiet_, "No progress lines");
}

int EmbedCommand::run() {
  if (options_.images().empty() && options_.texts().empty()) {
    std::fprintf(stderr,
                 "convirt embed: give --images (a folder or CSV), --texts (a file) or both\nRun "
                 "with --help for more information.\n");
    return 2;
  }
  int64_t last_reported = -1;
  std::string last_kind;
  auto progress = [&](const pipeline::EmbedProgress& p) {
    if (quiet_) return;
    // One line per shard-sized step (and the last), not one per batch.
    if (p.kind == last_kind && p.done != p.total &&
        p.done / options_.shard_size() == last_reported / options_.shard_size())
      return;
    last_kind = p.kind;
    last_reported = p.done;
    std::fprintf(stderr, "[embed] %s %lld/%lld%s\n", p.kind.c_str(), static_cast<long long>(p.done),
                 static_cast<long long>(p.total),
                 p.resumed > 0
                     ? (" (" + std::to_string(p.resumed) + " resumed from an earlier run)").c_str()
                     : "");
  };
  const auto r = pipeline::embed(options_, progress);
  for (const auto& s : r.skipped) std::fprintf(stderr, "skipped %s\n", s.c_str());
  std::printf("embedded %zu images and %zu texts (%s)\n", r.image_paths.size(), r.texts.size(),
              options_.features().c_str());
  for (const auto& f : r.files) std::printf("wrote %s\n", f.c_str());
  return 0;
}

Subcommand add_embed(CLI::App& app) {
  auto command = std::make_shared<EmbedCommand>(&app);
  return {command->app(), [command] { return command->run(); }};
}

}  // namespace convirt::cli
