#pragma once
// The bidirectional InfoNCE loss of ConVIRT (paper section 1):
//   L = (1/N) sum_i [ lambda * l_i(v->u) + (1 - lambda) * l_i(u->v) ]
// with cosine similarities scaled by 1/tau and the other pairs of the batch as negatives.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace convirt {

/// Which implementation computes the loss. All of them give the same value and gradients.
enum class InfoNCEBackend {
  kAuto,       ///< fused where available for the inputs' device, else reference
  kReference,  ///< plain ATen ops and autograd: materialises the N x N logits (obviously right,
               ///< slow)
  kFused,      ///< tiled, never holds N x N: CPU (multithreaded) and CUDA (tensor cores) kernels
};

/// "auto", "reference" or "fused"; anything else is a ValueError naming the accepted values.
InfoNCEBackend parse_infonce_backend(const std::string& name);
std::string to_string(InfoNCEBackend backend);

/// Options for infonce_loss / InfoNCELoss.
///
/// Example:
///   auto opts = convirt::InfoNCEOptions().temperature(0.1).image_to_text_weight(0.75);
///   auto loss = convirt::infonce_loss(v, u, opts);
struct InfoNCEOptions {
  /// tau: logits are cosine similarities divided by tau. Must be > 0. Paper default 0.1.
  TORCH_ARG(double, temperature) = 0.1;
  /// When defined, a 0-dim floating tensor holding tau that receives a gradient (learnable
  /// temperature, as CLIP learns its logit scale). It overrides `temperature`. Must hold a value >
  /// 0.
  TORCH_ARG(torch::Tensor, learnable_temperature) = {};
  /// lambda in [0, 1]: weight of the image->text direction. Paper default 0.75.
  TORCH_ARG(double, image_to_text_weight) = 0.75;
  /// L2-normalise both embeddings first (cosine similarity, the paper's <.,.>). Default on.
  TORCH_ARG(bool, normalize) = true;
  /// Norms are clamped below at eps before dividing, as torch.nn.functional.normalize does.
  TORCH_ARG(double, eps) = 1e-12;
  TORCH_ARG(InfoNCEBackend, backend) = InfoNCEBackend::kAuto;
};

/// The loss and what a training log wants to know about the batch.
struct InfoNCEOutput {
  torch::Tensor
      loss;  ///< 0-dim, differentiable: lambda * image_to_text + (1-lambda) * text_to_image
  torch::Tensor image_to_text;           ///< 0-dim mean of l_i(v->u) (no gradient)
  torch::Tensor text_to_image;           ///< 0-dim mean of l_i(u->v) (no gradient)
  torch::Tensor image_to_text_accuracy;  ///< fraction of images whose own report scores highest
  torch::Tensor text_to_image_accuracy;  ///< fraction of reports whose own image scores highest
};

/// The scalar loss L for image embeddings [N, D] and text embeddings [N, D] (row i of each is a
/// pair). fp32 and fp64 are computed in their own precision; fp16/bf16 inputs accumulate in fp32
/// and give an fp32 loss. Differentiable with respect to both embeddings and a learnable
/// temperature.
///
/// Example:
///   auto loss = convirt::infonce_loss(v, u, convirt::InfoNCEOptions().temperature(0.1));
///   loss.backward();
torch::Tensor infonce_loss(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                           const InfoNCEOptions& options = {});

/// As infonce_loss, plus the two directional losses and top-1 accuracies (ties count as correct).
InfoNCEOutput infonce_loss_with_stats(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                                      const InfoNCEOptions& options = {});

/// Bounds of a learned temperature: CLIP clamps its logit scale 1/tau at 100, i.e. tau >= 0.01.
inline constexpr double kMinLearnedTemperature = 0.01;
inline constexpr double kMaxLearnedTemperature = 100.0;

/// tau = exp(log_temperature) clamped to [kMinLearnedTemperature, kMaxLearnedTemperature]: however
/// large an optimiser step on log_temperature, tau stays positive and finite (beyond a bound its
/// gradient is zero).
torch::Tensor temperature_from_log(const torch::Tensor& log_temperature);

/// The parameter a module learns for a temperature that starts at `initial` (a 0-dim floating
/// tensor, or a number): log(initial), detached, with gradient. A ValueError when `initial` is
/// outside the bounds above.
torch::Tensor initial_log_temperature(const torch::Tensor& initial);

/// A batch split across processes, as the loss sees it: the seam through which InfoNCELoss takes
/// its negatives from every rank without the loss library depending on a process group.
/// convirt::dist::global_batch(ctx) implements it over c10d; a user's own transport can too.
class GlobalBatch {
 public:
  virtual ~GlobalBatch() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  /// The loss over the whole global batch for this rank's rows [n, D] of each modality: the value
  /// is the global L on every rank, the gradient this rank's share of it (so summing parameter
  /// gradients over ranks gives the one-process gradient). Stats are filled when `with_stats`.
  virtual InfoNCEOutput infonce(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                                const InfoNCEOptions& options, bool with_stats) const = 0;
};

/// Module form of infonce_loss, for one process or, given a GlobalBatch, for a batch split across
/// processes (one module either way, as open_clip's ClipLoss takes optional rank and world size).
/// With `learnable_temperature` set in the options (its value the initial tau), the module learns
/// log tau as the parameter "log_temperature", as CLIP learns its logit scale, and the loss uses
/// temperature_from_log() of it: no optimiser can make tau non-positive.
///
/// Example:
///   convirt::InfoNCELoss criterion(convirt::InfoNCEOptions().image_to_text_weight(0.75));
///   auto loss = criterion(v, u);
///   // across processes (#include <convirt/dist/infonce.h>):
///   convirt::InfoNCELoss global(convirt::InfoNCEOptions(), convirt::dist::global_batch(ctx));
class InfoNCELossImpl : public torch::nn::Cloneable<InfoNCELossImpl> {
 public:
  /// `global_batch` null, or of world size 1: the one-process loss (fused kernels where they
  /// exist). Otherwise this rank's rows are scored against every rank's.
  explicit InfoNCELossImpl(InfoNCEOptions options = {},
                           std::shared_ptr<const GlobalBatch> global_batch = nullptr);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& image_emb, const torch::Tensor& text_emb);
  InfoNCEOutput forward_with_stats(const torch::Tensor& image_emb, const torch::Tensor& text_emb);
  void pretty_print(std::ostream& stream) const override;
  /// The tau the loss uses now (0-dim; the fixed option when nothing is learned).
  torch::Tensor temperature() const;
  /// The options with the current learned tau in learnable_temperature (what forward() uses).
  InfoNCEOptions effective_options() const;
  /// Whether forward() scores against other processes' rows (a GlobalBatch of world size > 1).
  bool spans_processes() const;

  InfoNCEOptions options;
  std::shared_ptr<const GlobalBatch> global_batch;  ///< null: one process
  torch::Tensor log_temperature;                    ///< defined when the temperature is learned
};
TORCH_MODULE(InfoNCELoss);

}  // namespace convirt
