// pipeline::embed and pipeline::search: embeddings of image folders and text files, written in
// resumable shards, and a cosine nearest-neighbour search over the file they end in.
#include <convirt/pipeline/embed.h>

#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/labeled.h>
#include <convirt/data/loader.h>
#include <convirt/io/checkpoint.h>
#include <convirt/io/safetensors.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/model_text.h>
#include <convirt/text/wordpiece.h>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace convirt::pipeline {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kFormat = "convirt-embeddings";
constexpr const char* kPartsFormat = "convirt-embeddings-parts";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string hex64(uint64_t h) {
  return fmt::format("{:016x}", h);
}

// FNV-1a over bytes: the same value on every platform (std::hash is not), cheap next to a forward
// pass, and enough to tell two checkpoints or two input lists apart (not a security hash).
struct Fnv {
  uint64_t h = 0xCBF29CE484222325ULL;
  void add(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001B3ULL;
  }
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\n", 1);
  }
};

// The checkpoint's content, not its path: a copied model still matches its index, a retrained one
// at the same path does not.
std::string model_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "model must name a readable checkpoint, got '", path, "'");
  Fnv f;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    f.add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return hex64(f.h);
}

bool is_image_file(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".dcm";
}

std::vector<std::string> list_images(const EmbedOptions& o) {
  if (o.images().empty()) return {};
  const fs::path p(o.images());
  CONVIRT_CHECK_VALUE(fs::exists(p),
                      "images must name a folder of images or a .csv of image paths, got '",
                      o.images(), "', which does not exist");
  std::vector<std::string> out;
  if (fs::is_directory(p)) {
    std::vector<fs::path> rel;
    for (const auto& e :
         fs::recursive_directory_iterator(p, fs::directory_options::follow_directory_symlink)) {
      if (e.is_regular_file() && is_image_file(e.path()))
        rel.push_back(e.path().lexically_relative(p));
    }
    // Sorted, so the row order (and a resumed run's shards) does not depend on the file system.
    std::sort(rel.begin(), rel.end());
    for (const auto& r : rel) out.push_back((p / r).string());
    CONVIRT_CHECK_VALUE(!out.empty(), "images: the folder '", o.images(),
                        "' holds no .png, .jpg, .jpeg or .dcm file");
    return out;
  }
  CONVIRT_CHECK_VALUE(lower(p.extension().string()) == ".csv",
                      "images must name a folder or a .csv file of image paths, got '", o.images(),
                      "'");
  const auto table = data::read_csv(o.images());
  int64_t col = 0;
  if (!o.image_column().empty()) {
    col = table.require_column(o.image_column());
  } else {
    for (const std::string name : {"path", "Path", "image"}) {
      if (table.column(name) >= 0) {
        col = table.column(name);
        break;
      }
    }
  }
  const fs::path root = o.image_root().empty() ? p.parent_path() : fs::path(o.image_root());
  for (const auto& row : table.rows) {
    const std::string& v = row[static_cast<size_t>(col)];
    if (v.empty()) continue;
    // Like the dataset readers: dataset CSVs name images from the folder above the CSV's
    // ("CheXpert-v1.0-small/valid/..."), so that folder is tried when the CSV's own has no match.
    fs::path file = fs::path(v).is_absolute() ? fs::path(v) : root / v;
    if (!fs::exists(file) && o.image_root().empty() && fs::exists(root.parent_path() / v))
      file = root.parent_path() / v;
    out.push_back(file.string());
  }
  CONVIRT_CHECK_VALUE(!out.empty(), "images: the CSV '", o.images(), "' lists no image path");
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::vector<std::string> read_texts(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "texts must name a readable text file (one text per line), got '",
                      path, "'");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (!line.empty()) out.push_back(line);
  }
  CONVIRT_CHECK_VALUE(!out.empty(), "texts: the file '", path, "' holds no non-blank line");
  return out;
}

struct Features {
  bool projected = true;
  bool encoder = false;
};

Features parse_features(const std::string& s) {
  CONVIRT_CHECK_VALUE(s == "projected" || s == "encoder" || s == "both",
                      "features must be \"projected\", \"encoder\" or \"both\", got \"", s, "\"");
  return {s != "encoder", s != "projected"};
}

std::string shard_name(const std::string& kind, int64_t shard) {
  return fmt::format("{}-{:06}.safetensors", kind, shard);
}

// One shard's rows: the tensors of the rows kept (unreadable images are left out) and their
// positions in the input list.
struct Shard {
  torch::Tensor embeddings, features;
  std::vector<int64_t> kept;
  std::vector<std::string> skipped;
};

void save_shard(const fs::path& path, const Shard& s) {
  io::StateDict t;
  if (s.embeddings.defined()) t.insert("embeddings", s.embeddings);
  if (s.features.defined()) t.insert("features", s.features);
  io::write_safetensors(path.string(), t,
                        {{"kept", Json(s.kept).dump()}, {"skipped", Json(s.skipped).dump()}});
}

std::optional<Shard> load_shard(const fs::path& path, const Features& f) {
  if (!fs::exists(path)) return std::nullopt;
  auto file = io::read_safetensors(path.string());
  Shard s;
  s.kept = Json::parse(file.metadata.at("kept")).get<std::vector<int64_t>>();
  s.skipped = Json::parse(file.metadata.at("skipped")).get<std::vector<std::string>>();
  if (f.projected) s.embeddings = file.tensors["embeddings"];
  if (f.encoder) s.features = file.tensors["features"];
  return s;
}

// Everything a shard's content depends on; a parts folder written under other values is refused.
Json manifest_for(const EmbedOptions& o, const std::string& model_sha, const std::string& inputs,
                  int64_t image_size, int64_t images, int64_t texts) {
  Json m = Json::object();
  m["format"] = kPartsFormat;
  m["model_sha"] = model_sha;
  m["inputs_sha"] = inputs;
  m["features"] = o.features();
  m["image_size"] = image_size;
  m["shard_size"] = o.shard_size();
  m["images"] = images;
  m["texts"] = texts;
  return m;
}

void check_manifest(const fs::path& parts, const Json& want, const std::string& out) {
  const fs::path path = parts / "manifest.json";
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  Json have;
  try {
    have = Json::parse(ss.str());
  } catch (const nlohmann::json::parse_error&) {
    CONVIRT_CHECK_VALUE(false, "out: '", path.string(), "' is not a valid manifest; delete '",
                        parts.string(), "' to start over");
  }
  static const std::map<std::string, std::string> what{
      {"format", "format"},
      {"model_sha", "another model (checkpoint content differs)"},
      {"inputs_sha", "another list of images or texts"},
      {"features", "other --features"},
      {"image_size", "another image size"},
      {"shard_size", "another shard size"},
      {"images", "another number of images"},
      {"texts", "another number of texts"}};
  for (const auto& [key, value] : want.items()) {
    CONVIRT_CHECK_VALUE(have.contains(key) && have[key] == value, "out '", out,
                        "' has unfinished parts in '", parts.string(), "' from a run with ",
                        what.count(key) ? what.at(key) : key, " (", key, ": expected ",
                        value.dump(), ", found ", have.contains(key) ? have[key].dump() : "none",
                        "); they are not mixed: delete that folder or choose another out");
  }
}

torch::Device pick_device() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

// The images of one shard through the model's evaluation preprocessing.
Shard embed_image_shard(models::ConVIRTModel& model, const std::vector<std::string>& paths,
                        int64_t begin, int64_t end, const Features& f, int64_t image_size,
                        const EmbedOptions& o, const torch::Device& device,
                        const std::function<void(int64_t)>& on_rows) {
  std::vector<data::LabeledRecord> records;
  for (int64_t i = begin; i < end; ++i)
    records.push_back({paths[static_cast<size_t>(i)], {}, {}, "", ""});
  auto ds = std::make_shared<data::LabeledDataset>(std::move(records), std::vector<std::string>{},
                                                   eval_transform(image_size),
                                                   model->config().image_channels());
  data::Loader loader(ds, data::LoaderOptions()
                              .batch_size(o.batch_size())
                              .shuffle(false)
                              .drop_last(false)
                              .workers(o.workers())
                              .max_bad_fraction(-1));
  std::vector<torch::Tensor> emb, feat;
  Shard s;
  int64_t rows = 0;
  while (auto b = loader.next()) {
    // Unreadable images leave a batch short, so count the rows the batch was drawn from.
    rows = std::min(end - begin, rows + o.batch_size());
    if (b->size() > 0) {
      auto h = model->image_encoder->forward(b->images.to(device));
      if (f.projected) emb.push_back(model->image_head->forward(h).to(torch::kCPU, torch::kFloat));
      if (f.encoder) feat.push_back(h.to(torch::kCPU, torch::kFloat));
      for (auto i : b->indices) s.kept.push_back(begin + i);
    }
    on_rows(rows);
  }
  for (const auto& bad : loader.bad_samples().entries())
    s.skipped.push_back(bad.path + ": " + bad.reason);
  const auto empty = [](int64_t d) { return torch::zeros({0, d}); };
  if (f.projected) s.embeddings = emb.empty() ? empty(model->output_dim()) : torch::cat(emb);
  if (f.encoder)
    s.features = feat.empty() ? empty(model->image_encoder->output_dim()) : torch::cat(feat);
  return s;
}

Shard embed_text_shard(models::ConVIRTModel& model, const text::WordPieceTokenizer& tokenizer,
                       const std::vector<std::string>& texts, int64_t begin, int64_t end,
                       const Features& f, const EmbedOptions& o, const torch::Device& device,
                       const std::function<void(int64_t)>& on_rows) {
  std::vector<torch::Tensor> emb, feat;
  Shard s;
  for (int64_t i = begin; i < end; i += o.batch_size()) {
    const int64_t j = std::min(end, i + o.batch_size());
    std::vector<std::string> batch(texts.begin() + i, texts.begin() + j);
    auto enc = tokenizer.encode_batch(batch, model->config().max_length());
    auto h = model->text_encoder->forward(enc.input_ids.to(device), enc.attention_mask.to(device));
    if (f.projected) emb.push_back(model->text_head->forward(h).to(torch::kCPU, torch::kFloat));
    if (f.encoder) feat.push_back(h.to(torch::kCPU, torch::kFloat));
    for (int64_t k = i; k < j; ++k) s.kept.push_back(k);
    on_rows(j - begin);
  }
  if (f.projected) s.embeddings = torch::cat(emb);
  if (f.encoder) s.features = torch::cat(feat);
  return s;
}

std::string npy_descr(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat:
      return "<f4";
    case torch::kDouble:
      return "<f8";
    case torch::kLong:
      return "<i8";
    case torch::kInt:
      return "<i4";
    case torch::kByte:
      return "|u1";
    default:
      CONVIRT_CHECK_TYPE(false,
                         "write_npy: array must be float32, float64, int64, int32 or uint8, got ",
                         c10::toString(t));
  }
  return "";
}

}  // namespace

void write_npy(const std::string& path, const torch::Tensor& array) {
  CONVIRT_CHECK_VALUE(array.defined(), "write_npy: array must be a defined tensor");
  const std::string descr = npy_descr(array.scalar_type());
  auto a = array.to(torch::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < a.dim(); ++i)
    shape += std::to_string(a.size(i)) + (a.dim() == 1 ? "," : i + 1 < a.dim() ? ", " : "");
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Format 1.0: magic, version, a 2-byte header length, and the header padded with spaces to a
  // multiple of 64 bytes (NumPy's alignment) ending in a newline.
  const size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string data = "\x93NUMPY";
  data += '\x01';
  data += '\x00';
  const auto len = static_cast<uint16_t>(header.size());
  data += static_cast<char>(len & 0xFF);
  data += static_cast<char>(len >> 8);
  data += header;
  data.append(static_cast<const char*>(a.data_ptr()), static_cast<size_t>(a.nbytes()));
  write_file_atomically(path, data, "npy array");
}

EmbedResult embed(const EmbedOptions& o, const EmbedCallback& on_progress) {
  CONVIRT_CHECK_VALUE(!o.model_path().empty(), "model must name a convirt checkpoint");
  CONVIRT_CHECK_VALUE(fs::is_regular_file(o.model_path()),
                      "model must name an existing checkpoint file, got '", o.model_path(), "'");
  CONVIRT_CHECK_VALUE(!o.images().empty() || !o.texts().empty(),
                      "embed needs images (a folder or CSV) or texts (a file), got neither");
  CONVIRT_CHECK_VALUE(!o.out().empty(), "out must name the output file (.safetensors or .npy)");
  const std::string ext = lower(fs::path(o.out()).extension().string());
  CONVIRT_CHECK_VALUE(ext == ".safetensors" || ext == ".npy",
                      "out must end in .safetensors or .npy, got '", o.out(), "'");
  CONVIRT_CHECK_VALUE(o.image_size() >= 0, "image_size must be >= 0 (0 = the model's), got ",
                      o.image_size());
  CONVIRT_CHECK_VALUE(o.batch_size() > 0, "batch_size must be > 0, got ", o.batch_size());
  CONVIRT_CHECK_VALUE(o.shard_size() > 0, "shard_size must be > 0, got ", o.shard_size());
  CONVIRT_CHECK_VALUE(o.workers() >= 0, "workers must be >= 0, got ", o.workers());
  CONVIRT_CHECK_VALUE(o.threads() >= 0, "threads must be >= 0 (0 = all cores), got ", o.threads());
  const Features f = parse_features(o.features());
  // Inputs and the vocabulary are checked before any image is read: their errors are the likely
  // ones.
  const auto paths = list_images(o);
  const auto texts = read_texts(o.texts());
  set_num_threads(static_cast<int>(o.threads()));
  const torch::Device device = pick_device();
  auto model = io::load_convirt(o.model_path());
  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  if (!texts.empty()) tokenizer = model_tokenizer(*model, o.vocab(), o.model_path());
  model->to(device);
  model->eval();
  const int64_t size = o.image_size() > 0 ? o.image_size() : model->config().image_size();
  const std::string model_sha = model_fingerprint(o.model_path());
  Fnv inputs;
  inputs.add("images");
  for (const auto& p : paths) inputs.add(p);
  inputs.add("texts");
  for (const auto& t : texts) inputs.add(t);

  const fs::path parts = fs::path(o.out() + ".parts");
  const Json manifest =
      manifest_for(o, model_sha, hex64(inputs.h), size, static_cast<int64_t>(paths.size()),
                   static_cast<int64_t>(texts.size()));
  if (fs::exists(parts / "manifest.json")) {
    check_manifest(parts, manifest, o.out());
  } else {
    write_file_atomically((parts / "manifest.json").string(), manifest.dump(2) + "\n",
                          "embedding manifest");
  }

  torch::NoGradGuard no_grad;
  EmbedResult r;
  io::StateDict tensors;
  auto run_kind = [&](const std::string& kind, int64_t n, auto&& compute) {
    std::vector<Shard> shards;
    int64_t resumed = 0;
    for (int64_t s = 0, begin = 0; begin < n; ++s, begin += o.shard_size()) {
      const int64_t end = std::min(n, begin + o.shard_size());
      const fs::path file = parts / shard_name(kind, s);
      auto loaded = load_shard(file, f);
      if (loaded) {
        resumed += end - begin;
        shards.push_back(std::move(*loaded));
        if (on_progress) on_progress({kind, end, n, resumed});
        continue;
      }
      shards.push_back(compute(begin, end, [&](int64_t rows) {
        if (on_progress) on_progress({kind, begin + rows, n, resumed});
      }));
      save_shard(file, shards.back());
    }
    r.resumed += resumed;
    std::vector<torch::Tensor> emb, feat;
    std::vector<int64_t> kept;
    for (auto& s : shards) {
      if (f.projected) emb.push_back(s.embeddings);
      if (f.encoder) feat.push_back(s.features);
      kept.insert(kept.end(), s.kept.begin(), s.kept.end());
      r.skipped.insert(r.skipped.end(), s.skipped.begin(), s.skipped.end());
    }
    if (f.projected)
      tensors.insert(kind == "images" ? "image_embeddings" : "text_embeddings", torch::cat(emb));
    if (f.encoder)
      tensors.insert(kind == "images" ? "image_features" : "text_features", torch::cat(feat));
    return kept;
  };
  if (!paths.empty()) {
    auto kept = run_kind("images", static_cast<int64_t>(paths.size()),
                         [&](int64_t b, int64_t e, const std::function<void(int64_t)>& cb) {
                           return embed_image_shard(model, paths, b, e, f, size, o, device, cb);
                         });
    CONVIRT_CHECK(!kept.empty(), "images: none of the ", paths.size(),
                  " images could be read; for example ", r.skipped.front());
    for (auto i : kept) r.image_paths.push_back(paths[static_cast<size_t>(i)]);
  }
  if (!texts.empty()) {
    auto kept =
        run_kind("texts", static_cast<int64_t>(texts.size()),
                 [&](int64_t b, int64_t e, const std::function<void(int64_t)>& cb) {
                   return embed_text_shard(model, *tokenizer, texts, b, e, f, o, device, cb);
                 });
    r.texts = texts;
  }
  for (const auto& item : tensors.items()) r.tensors.push_back(item.key());

  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"version", "1"},
                                          {"model", o.model_path()},
                                          {"model_sha", model_sha},
                                          {"features", o.features()},
                                          {"image_size", std::to_string(size)},
                                          {"projection_dim", std::to_string(model->output_dim())},
                                          {"image_paths", Json(r.image_paths).dump()},
                                          {"texts", Json(r.texts).dump()},
                                          {"skipped", Json(r.skipped).dump()}};
  if (ext == ".safetensors") {
    io::write_safetensors(o.out(), tensors, meta);
    r.files.push_back(o.out());
  } else {
    // One array: the file asked for. Several: "<stem>.<tensor>.npy" each. The paths and texts go
    // to "<stem>.json", since .npy holds numbers only.
    const fs::path stem = fs::path(o.out()).replace_extension("");
    for (const auto& item : tensors.items()) {
      const std::string file =
          tensors.size() == 1 ? o.out() : stem.string() + "." + item.key() + ".npy";
      write_npy(file, item.value());
      r.files.push_back(file);
    }
    Json side = Json::object();
    for (const auto& [k, v] : meta) {
      side[k] = (k == "image_paths" || k == "texts" || k == "skipped") ? Json::parse(v) : Json(v);
    }
    Json files = Json::object();
    for (size_t i = 0; i < r.tensors.size(); ++i)
      files[r.tensors[i]] = fs::path(r.files[i]).filename().string();
    side["arrays"] = files;
    const std::string sidecar = stem.string() + ".json";
    write_file_atomically(sidecar, side.dump(2) + "\n", "embedding sidecar");
    r.files.push_back(sidecar);
  }
  // Done: the shards are now in the final file.
  fs::remove_all(parts);
  return r;
}

std::pair<torch::Tensor, torch::Tensor> nearest(const torch::Tensor& index,
                                                const torch::Tensor& query, int64_t k) {
  CONVIRT_CHECK_VALUE(index.dim() == 2, "index must be 2-D [N, d], got ",
                      convirt::detail::shape_str(index.sizes()));
  CONVIRT_CHECK_VALUE(query.dim() == 1 && query.size(0) == index.size(1), "query must be [",
                      index.size(1), "] (the index's width), got ",
                      convirt::detail::shape_str(query.sizes()));
  CONVIRT_CHECK_VALUE(k > 0, "k must be > 0, got ", k);
  namespace F = torch::nn::functional;
  auto x = F::normalize(index.to(torch::kCPU, torch::kFloat), F::NormalizeFuncOptions().dim(1));
  auto q = F::normalize(query.to(torch::kCPU, torch::kFloat), F::NormalizeFuncOptions().dim(0));
  auto sims = x.matmul(q);
  // A stable sort keeps equal scores in row order, so results do not depend on the sort's whims.
  auto order = std::get<1>(sims.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  order = order.slice(0, 0, std::min<int64_t>(k, order.size(0)));
  return {order, sims.index_select(0, order)};
}

std::vector<SearchHit> search(const SearchOptions& o) {
  CONVIRT_CHECK_VALUE(!o.index().empty(), "index must name an embeddings file of convirt embed");
  CONVIRT_CHECK_VALUE(fs::is_regular_file(o.index()),
                      "index must name an existing embeddings file (.safetensors), got '",
                      o.index(), "'");
  CONVIRT_CHECK_VALUE(lower(fs::path(o.index()).extension().string()) == ".safetensors",
                      "index must be the .safetensors output of convirt embed, got '", o.index(),
                      "'");
  CONVIRT_CHECK_VALUE(o.text().empty() != o.image().empty(),
                      "search needs exactly one query: text or image, got ",
                      o.text().empty() ? "neither" : "both");
  CONVIRT_CHECK_VALUE(o.k() > 0, "k must be > 0, got ", o.k());
  CONVIRT_CHECK_VALUE(o.target() == "images" || o.target() == "texts",
                      "target must be \"images\" or \"texts\", got \"", o.target(), "\"");
  auto file = io::read_safetensors(o.index());
  auto meta = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    CONVIRT_CHECK_VALUE(it != file.metadata.end(), "index '", o.index(),
                        "' is not an embeddings file of convirt embed (no \"", key,
                        "\" in its metadata)");
    return it->second;
  };
  CONVIRT_CHECK_VALUE(meta("format") == kFormat, "index '", o.index(),
                      "' is not an embeddings file of convirt embed (format \"", meta("format"),
                      "\", expected \"", kFormat, "\")");
  const bool images = o.target() == "images";
  const std::string name = images ? "image_embeddings" : "text_embeddings";
  CONVIRT_CHECK_VALUE(file.tensors.contains(name), "index '", o.index(), "' holds no ", name,
                      " (it has: ", meta("features"), " features of ",
                      images ? "texts only" : "images only",
                      "); search compares projected embeddings: embed with --features projected "
                      "or both",
                      images ? " and --images" : " and --texts");
  const torch::Tensor rows = file.tensors[name];
  const auto items =
      Json::parse(meta(images ? "image_paths" : "texts")).get<std::vector<std::string>>();
  CONVIRT_CHECK_VALUE(rows.dim() == 2 && rows.size(0) == static_cast<int64_t>(items.size()),
                      "index '", o.index(), "': ", name, " must be [", items.size(),
                      ", d] (one row per recorded entry), got ",
                      convirt::detail::shape_str(rows.sizes()));

  const std::string model_path = o.model_path().empty() ? meta("model") : o.model_path();
  CONVIRT_CHECK_VALUE(
      fs::is_regular_file(model_path), "model must name the checkpoint that wrote the index, got '",
      model_path, "'",
      o.model_path().empty() ? " (recorded in the index; pass model to override)" : "");
  auto model = io::load_convirt(model_path);
  model->eval();
  CONVIRT_CHECK_VALUE(model->output_dim() == rows.size(1), "index '", o.index(), "' holds ",
                      rows.size(1), "-dim embeddings but the model '", model_path, "' projects to ",
                      model->output_dim(), " dims: the index was written by another model");
  CONVIRT_CHECK_VALUE(model_fingerprint(model_path) == meta("model_sha"), "model '", model_path,
                      "' is not the checkpoint that wrote the index '", o.index(),
                      "' (its content differs); embeddings of different models are not "
                      "comparable");
  torch::NoGradGuard no_grad;
  torch::Tensor q;
  if (!o.text().empty()) {
    auto tok = model_tokenizer(*model, o.vocab(), model_path);
    auto enc = tok->encode_batch({o.text()}, model->config().max_length());
    q = model->encode_text(enc.input_ids, enc.attention_mask)[0];
  } else {
    CONVIRT_CHECK_VALUE(fs::is_regular_file(o.image()), "image must name an image file, got '",
                        o.image(), "'");
    // Through the same reader and preprocessing as the indexed images, at the index's size.
    data::LabeledDataset one({{o.image(), {}, {}, "", ""}}, {},
                             eval_transform(std::stoll(meta("image_size"))),
                             model->config().image_channels());
    torch::Tensor x;
    try {
      x = one.get(0, 0).image;
    } catch (const data::BadSampleError& e) {
      CONVIRT_CHECK_VALUE(false, "image '", o.image(), "' cannot be read: ", e.reason());
    }
    q = model->encode_image(x.unsqueeze(0))[0];
  }
  auto [idx, scores] = nearest(rows, q, o.k());
  std::vector<SearchHit> hits;
  for (int64_t i = 0; i < idx.size(0); ++i) {
    const int64_t row = idx[i].item<int64_t>();
    hits.push_back({i + 1, scores[i].item<double>(), row, items[static_cast<size_t>(row)]});
  }
  return hits;
}

}  // namespace convirt::pipeline
