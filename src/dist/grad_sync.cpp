// Bucketed gradient all-reduce. Buckets hold parameters in reverse registration order (backward
// usually produces the last layers' gradients first), split by dtype and device, and are always
// launched in bucket order, so every rank issues the same sequence of collectives whatever order
// its hooks fire in.

#include <convirt/core/check.h>
#include <convirt/dist/grad_sync.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <mutex>
#include <utility>

namespace convirt::dist {
namespace detail {

struct Bucket {
  std::vector<int64_t> members;  // indices into SyncState::params
  std::vector<int64_t> offsets;  // element offset of each member in `flat`
  int64_t numel = 0;
  at::TensorOptions options;
  at::Tensor flat;  // this step's gradients (overlap mode), allocated on first use
  int64_t pending = 0;
  bool launched = false;
  PendingWork work;
};

struct SyncState {
  DistributedContext ctx;
  GradientSynchronizerOptions options;
  std::vector<at::Tensor> params;
  std::vector<std::pair<int64_t, int64_t>> slot;  // param -> (bucket, member position)
  std::vector<Bucket> buckets;
  std::vector<unsigned> hook_ids;
  std::vector<bool> ready;
  size_t next_to_launch = 0;
  std::mutex mutex;

  void reset_step() {
    for (auto& b : buckets) {
      b.pending = static_cast<int64_t>(b.members.size());
      b.launched = false;
      b.work = PendingWork();
      // After-backward mode rebuilds the buffer from .grad at each synchronize(): free it
      // meanwhile. Overlap mode overwrites every slot each step (see launch()).
      if (!options.overlap()) b.flat = at::Tensor();
    }
    std::fill(ready.begin(), ready.end(), false);
    next_to_launch = 0;
  }

  at::Tensor& flat_of(Bucket& b) {
    if (!b.flat.defined()) b.flat = at::zeros({b.numel}, b.options);
    return b.flat;
  }

  void launch(Bucket& b) {
    if (options.overlap()) {
      // Parameters that got no gradient this step contribute zeros.
      for (size_t k = 0; k < b.members.size(); ++k) {
        if (!ready[b.members[k]]) {
          flat_of(b).narrow(0, b.offsets[k], params[b.members[k]].numel()).zero_();
        }
      }
    }
    std::vector<at::Tensor> ts{flat_of(b)};
    b.work = ctx.all_reduce_async(ts, ReduceOp::kSum);
    b.launched = true;
  }

  // Called (under the lock) whenever a bucket may have become complete.
  void launch_ready_prefix() {
    while (next_to_launch < buckets.size() && buckets[next_to_launch].pending == 0) {
      launch(buckets[next_to_launch]);
      ++next_to_launch;
    }
  }

  at::Tensor on_grad(int64_t index, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    CONVIRT_CHECK(!ready[index], "GradientSynchronizer: parameter ", index,
                  " received a second gradient before synchronize(); with overlap on, call "
                  "synchronize() after every backward (sums of reduced gradients accumulate "
                  "correctly), or use overlap(false)");
    CONVIRT_CHECK(grad.layout() == at::kStrided,
                  "GradientSynchronizer handles dense gradients only, parameter ", index, " got ",
                  grad.layout());
    auto [bi, pos] = slot[index];
    Bucket& b = buckets[bi];
    flat_of(b).narrow(0, b.offsets[pos], grad.numel()).view(grad.sizes()).copy_(grad);
    ready[index] = true;
    --b.pending;
    launch_ready_prefix();
    // The reduced gradient is added to .grad in synchronize(); meanwhile AccumulateGrad adds
    // zeros (a broadcast scalar: nothing allocated), leaving earlier gradients as they were.
    return at::zeros({}, grad.options()).expand(grad.sizes());
  }
};

}  // namespace detail

namespace {

void write_back(detail::SyncState& s, detail::Bucket& b, bool overwrite) {
  at::NoGradGuard no_grad;
  at::Tensor flat = b.flat;
  if (s.options.average()) flat = flat / static_cast<double>(s.ctx.world_size());
  for (size_t k = 0; k < b.members.size(); ++k) {
    at::Tensor& p = s.params[b.members[k]];
    const at::Tensor slice = flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
    if (!p.grad().defined()) {
      p.mutable_grad() = slice.clone();
    } else if (overwrite) {
      p.mutable_grad().copy_(slice);
    } else {
      p.mutable_grad().add_(slice);
    }
  }
}

}  // namespace

GradientSynchronizer::GradientSynchronizer(std::vector<torch::Tensor> parameters,
                                           DistributedContext ctx,
                                           GradientSynchronizerOptions options)
    : state_(std::make_shared<detail::SyncState>()) {
  CONVIRT_CHECK_VALUE(options.bucket_cap_mb() > 0, "bucket_cap_mb must be > 0, got ",
                      options.bucket_cap_mb());
  auto& s = *state_;
  s.ctx = std::move(ctx);
  s.options = options;
  for (size_t i = 0; i < parameters.size(); ++i) {
    CONVIRT_CHECK_VALUE(parameters[i].defined(), "parameters[", i, "] must be defined");
    if (parameters[i].requires_grad()) s.params.push_back(parameters[i]);
  }
  s.slot.resize(s.params.size());
  s.ready.assign(s.params.size(), false);

  const double cap_bytes = options.bucket_cap_mb() * 1024.0 * 1024.0;
  for (int64_t i = static_cast<int64_t>(s.params.size()) - 1; i >= 0; --i) {
    const at::Tensor& p = s.params[i];
    const auto opts = at::TensorOptions().dtype(p.scalar_type()).device(p.device());
    const bool fits =
        !s.buckets.empty() && s.buckets.back().options.dtype() == opts.dtype() &&
        s.buckets.back().options.device() == opts.device() &&
        static_cast<double>((s.buckets.back().numel + p.numel()) * p.element_size()) <= cap_bytes;
    if (!fits) {
      s.buckets.emplace_back();
      s.buckets.back().options = opts;
    }
    auto& b = s.buckets.back();
    s.slot[i] = {static_cast<int64_t>(s.buckets.size()) - 1,
                 static_cast<int64_t>(b.members.size())};
    b.members.push_back(i);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
  }
  s.reset_step();

  if (options.overlap() && s.ctx.is_distributed()) {
    std::weak_ptr<detail::SyncState> weak = state_;
    for (size_t i = 0; i < s.params.size(); ++i) {
      const auto index = static_cast<int64_t>(i);
      s.hook_ids.push_back(s.params[i].register_hook([weak, index](at::Tensor grad) {
        auto state = weak.lock();
        return state ? state->on_grad(index, grad) : grad;
      }));
    }
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  auto& s = *state_;
  for (size_t i = 0; i < s.hook_ids.size(); ++i) s.params[i].remove_hook(s.hook_ids[i]);
  // Work still in flight references its own buffers; let it finish so no collective is left
  // half-issued on this rank.
  for (auto& b : s.buckets) {
    try {
      b.work.wait();
    } catch (const std::exception&) {
      // Already reported to whoever called synchronize(); a destructor must not throw.
    }
  }
}

void GradientSynchronizer::synchronize() {
  auto& s = *state_;
  if (!s.ctx.is_distributed()) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.options.overlap()) {
    // Buckets whose parameters got no gradient this step still take part (with zeros), in order.
    while (s.next_to_launch < s.buckets.size()) s.launch(s.buckets[s.next_to_launch++]);
    try {
      for (auto& b : s.buckets) b.work.wait();
    } catch (...) {
      s.reset_step();
      throw;
    }
    for (auto& b : s.buckets) write_back(s, b, /*overwrite=*/false);
    s.reset_step();
    return;
  }
  for (auto& b : s.buckets) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> pieces;
    for (auto m : b.members) {
      const at::Tensor& p = s.params[m];
      pieces.push_back(p.grad().defined() ? p.grad().reshape({-1})
                                          : at::zeros({p.numel()}, b.options));
    }
    b.flat = at::cat(pieces);
    s.launch(b);
  }
  for (auto& b : s.buckets) b.work.wait();
  for (auto& b : s.buckets) write_back(s, b, /*overwrite=*/true);
  s.reset_step();
}

int64_t GradientSynchronizer::num_buckets() const {
  return static_cast<int64_t>(state_->buckets.size());
}

std::vector<std::vector<int64_t>> GradientSynchronizer::bucket_members() const {
  std::vector<std::vector<int64_t>> out;
  for (const auto& b : state_->buckets) out.push_back(b.members);
  return out;
}

const GradientSynchronizerOptions& GradientSynchronizer::options() const {
  return state_->options;
}

void broadcast_module_state(torch::nn::Module& module, const DistributedContext& ctx,
                            int64_t root) {
  CONVIRT_CHECK_INDEX(root >= 0 && root < ctx.world_size(), "root must be in [0, ",
                      ctx.world_size(), "), got ", root);
  if (!ctx.is_distributed()) return;
  at::NoGradGuard no_grad;
  for (auto& t : module.parameters()) ctx.broadcast_(t, root);
  for (auto& t : module.buffers()) {
    if (t.defined()) ctx.broadcast_(t, root);
  }
}

}  // namespace convirt::dist
