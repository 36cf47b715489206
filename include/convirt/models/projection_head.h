#pragma once
// g_v and g_u of the paper: Linear -> ReLU -> Linear (default), or a single Linear (Table 4
// ablation).

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>

namespace convirt::models {

enum class ProjectionKind {
  kMLP,     ///< fc1 -> ReLU -> fc2 (paper)
  kLinear,  ///< fc1 only
};
/// "mlp" or "linear".
ProjectionKind parse_projection_kind(const std::string& name);
std::string to_string(ProjectionKind kind);

/// Options for ProjectionHead.
///
/// Example:
///   convirt::models::ProjectionHead head(convirt::models::ProjectionHeadOptions(2048, 512));
struct ProjectionHeadOptions {
  ProjectionHeadOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  /// Hidden width of the MLP; 0 means in_features (the common reading of the paper).
  TORCH_ARG(int64_t, hidden_features) = 0;
  TORCH_ARG(ProjectionKind, kind) = ProjectionKind::kMLP;
};

/// Maps [B, in_features] to [B, out_features]. Parameters: fc1.{weight,bias} (+ fc2 for the MLP).
class ProjectionHeadImpl : public torch::nn::Cloneable<ProjectionHeadImpl> {
 public:
  explicit ProjectionHeadImpl(ProjectionHeadOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  int64_t output_dim() const { return options.out_features(); }

  ProjectionHeadOptions options;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ProjectionHead);

}  // namespace convirt::models
