#include <convirt/core/check.h>
#include <convirt/train/objective.h>
#include <convirt/train/objectives/contrastive_binary.h>
#include <convirt/train/objectives/convirt.h>

#include <torch/torch.h>

#include <map>
#include <mutex>

namespace convirt::train {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ObjectiveFactory> factories;  ///< by registered name
  std::map<std::string, std::string> names;           ///< every spelling -> registered name
};

void add(Registry& r, const std::string& name, ObjectiveFactory factory,
         const std::vector<std::string>& aliases) {
  CONVIRT_CHECK_VALUE(!name.empty(), "register_objective: name must not be empty");
  CONVIRT_CHECK_VALUE(factory != nullptr, "register_objective: factory of '", name,
                      "' must be callable");
  std::vector<std::string> spellings{name};
  spellings.insert(spellings.end(), aliases.begin(), aliases.end());
  for (const auto& s : spellings) {
    CONVIRT_CHECK_VALUE(!s.empty(), "register_objective: an alias of '", name,
                        "' must not be empty");
    CONVIRT_CHECK_VALUE(r.names.count(s) == 0, "register_objective: the objective name '", s,
                        "' is already registered (as '", r.names.count(s) ? r.names.at(s) : "",
                        "')");
  }
  for (const auto& s : spellings) r.names[s] = name;
  r.factories[name] = std::move(factory);
}

// Built in on first use rather than by static initialisers, which a static link may drop.
Registry& registry() {
  static Registry r;
  static const bool built_in = [] {
    add(r, "convirt",
        [](const ObjectiveContext& c) { return std::make_shared<ConVIRTObjectiveImpl>(c); }, {});
    add(r, "binary",
        [](const ObjectiveContext& c) {
          return std::make_shared<ContrastiveBinaryObjectiveImpl>(c);
        },
        {"contrastive-binary"});
    return true;
  }();
  (void)built_in;
  return r;
}

std::string known_names(const Registry& r) {
  std::string out;
  for (const auto& kv : r.names) out += (out.empty() ? "'" : ", '") + kv.first + "'";
  return out;
}

}  // namespace

void register_objective(const std::string& name, ObjectiveFactory factory,
                        const std::vector<std::string>& aliases) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  add(r, name, std::move(factory), aliases);
}

std::string objective_name(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.names.find(name);
  CONVIRT_CHECK_VALUE(it != r.names.end(), "objective must be one of ", known_names(r),
                      " (or a name given to convirt::train::register_objective), got '", name, "'");
  return it->second;
}

std::vector<std::string> objective_names() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> out;
  for (const auto& kv : r.names) out.push_back(kv.first);
  return out;
}

PretrainObjective make_objective(const std::string& name, const ObjectiveContext& context) {
  const std::string registered = objective_name(name);
  ObjectiveFactory factory;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    factory = r.factories.at(registered);
  }
  auto objective = factory(context);
  CONVIRT_CHECK_VALUE(objective != nullptr, "the factory of objective '", registered,
                      "' returned no objective");
  return objective;
}

std::pair<torch::Tensor, torch::Tensor> embed_pairs(models::ConVIRTModelImpl& model,
                                                    const ObjectiveBatch& batch) {
  // Reduced-precision embeddings are scored in fp32; fp32 and fp64 ones as they are (a float64
  // model trains in float64 end to end, which is how the distributed equivalence is tested).
  auto loss_precision = [](const torch::Tensor& t) {
    const auto type = t.scalar_type();
    return type == torch::kHalf || type == torch::kBFloat16 ? t.to(torch::kFloat) : t;
  };
  if (batch.size() == 0) {
    // A rank whose whole shard was bad samples still takes part in a global loss, with no rows.
    auto empty = torch::zeros({0, model.output_dim()}, batch.images.options());
    const bool grad = torch::GradMode::is_enabled();
    // Synchronised BatchNorm layers are collectives: the image encoder runs with 0 rows here, as
    // the other ranks run it with theirs.
    if (batch.sync_batch_norm)
      return {loss_precision(model.encode_image(batch.images)), empty.clone().requires_grad_(grad)};
    return {empty.clone().requires_grad_(grad), empty.clone().requires_grad_(grad)};
  }
  auto [v, u] = model.forward(batch.images, batch.input_ids, batch.attention_mask);
  return {loss_precision(v), loss_precision(u)};
}

}  // namespace convirt::train
