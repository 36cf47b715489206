// Fused CPU path of the bidirectional InfoNCE loss.
//
// The N x N logit matrix is never held: rows are processed in panels of P rows (P x N logits, a
// bounded buffer whose size follows the last-level cache, so that the passes after the GEMM find it
// there). Each panel's logits come from R x C tiles, each one single-threaded BLAS call (R from the
// L2 cache), shared out over the loss's threads. Then, shared out in tasks of rows, each row's
// log-sum-exp is completed (two passes: max, sum of exp), and, in tasks of columns, each column's
// log-sum-exp is merged online into a running (max, sum) state (tile_math::lse_merge).
// The backward recomputes each panel from the stored row/column log-sum-exps (FlashAttention style:
// one GEMM per panel, as many as the forward), turns it into dL/dS in place, and computes
// grad_image = dS B / tau (the panel's rows, in blocks of R) and grad_text += dS^T A / tau (in
// blocks of R of its rows) as further single-threaded GEMMs in one round of tasks. Extra memory:
// O(N D + P N).
//
// All of it runs on the loss's own threads (threads.h explains why not OpenMP's plus
// the BLAS's). Every reduction runs in a fixed order that depends neither on the thread count nor
// on which thread takes which task (each row or column is owned by one task; partial sums are
// combined sequentially; the tiles depend on the cache sizes only), so results are run-to-run
// identical.

#include "kernels.h"
#include "loops.h"
#include "threads.h"

#include <convirt/core/check.h>
#include <convirt/loss/infonce/cpu.h>
#include <convirt/loss/infonce/tile_math.h>

#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/library.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace convirt::detail {
namespace tm = convirt::tile_math;

namespace {

constexpr int64_t kColumnChunk = 512;  // columns per task in the column pass
// Rows shorter than this (N < 2048) use the AVX2 loops even where AVX-512 ones could run.
constexpr int64_t kAvx512MinRow = 2048;

// A GEMM tile is R x C logits, one single-threaded BLAS call. R: the tile's R x D embeddings fill
// the L2 cache, within these bounds; C = 2 R. OpenBLAS packs both operands per call, so small tiles
// waste time: on a Sapphire Rapids core a 512-row call reaches 85% of a 4096-row one, 64 rows 45%.
constexpr int64_t kMinTileRows = 256;
constexpr int64_t kMaxTileRows = 1024;
// Rows per task in the row passes (any count gives the same results; small enough to balance).
constexpr int64_t kRowTask = 64;
// At least this many panel rows (unless N is smaller), so a panel has GEMM tiles for every thread
// even when N is so large that the budget holds few rows.
constexpr int64_t kMinPanelRows = 512;
// The panel budget: half the last-level cache, within these bounds (the upper one was the old fixed
// budget, so peak memory does not grow).
constexpr int64_t kMinPanelBytes = int64_t{8} << 20;
constexpr int64_t kMaxPanelBytes = int64_t{64} << 20;

int64_t cache_bytes(int name, int64_t fallback) {
  const long v = ::sysconf(name);
  return v > 0 ? static_cast<int64_t>(v) : fallback;
}

int64_t panel_budget_bytes() {
  // Tests set this small to exercise many panels on small inputs.
  if (const char* v = std::getenv("CONVIRT_INFONCE_PANEL_BYTES")) {
    long long b = std::atoll(v);
    if (b > 0) return b;
  }
  // Half the last-level cache: the row and column passes and the gradient GEMMs read a panel right
  // after the tile GEMMs wrote it, and should find it there.
  const int64_t l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, int64_t{32} << 20);
  return std::clamp(l3 / 2, kMinPanelBytes, kMaxPanelBytes);
}

int64_t tile_rows_for(int64_t d, int64_t element_size) {
  const int64_t l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, int64_t{1} << 20);
  const int64_t rows = l2 / (std::max<int64_t>(1, d) * element_size);
  return std::clamp(rows, kMinTileRows, kMaxTileRows);
}

// ---- phase accounting (see convirt/loss/infonce/cpu.h) ----
enum Phase {
  kForwardGemm,
  kRowPass,
  kColumnPass,
  kBackwardGemm,
  kGradientPass,
  kGradGemm,
  kWait,
  kKernel,
  kPhaseCount
};
std::array<std::atomic<int64_t>, kPhaseCount> g_phase_ns{};
std::atomic<int64_t> g_calls{0};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Thread time spent in a phase, counted as its share of the wall time (divided by the thread
// count).
struct PhaseTimer {
  int threads;
  int64_t t0 = now_ns();
  explicit PhaseTimer(int threads_) : threads(threads_) {}
  void lap(Phase p) {
    const int64_t t = now_ns();
    g_phase_ns[p].fetch_add((t - t0) / threads, std::memory_order_relaxed);
    t0 = t;
  }
};

// Runs body(item) for item in [0, items) on `threads` threads; items are handed out in order from a
// shared counter, so a thread slowed down by other work on the machine takes fewer of them. Which
// thread runs an item never changes a result.
template <typename F>
void parallel_items(int threads, int64_t items, const F& body) {
  const int used = static_cast<int>(std::min<int64_t>(threads, items));
  if (used <= 0) return;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> busy{0};
  const int64_t t0 = now_ns();
  run_on_loss_threads(used, [&](int) {
    // The pool's threads start with autograd enabled; the kernels run below it, as the caller does.
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const int64_t b0 = now_ns();
    for (int64_t i; (i = next.fetch_add(1)) < items;) body(i);
    busy.fetch_add(now_ns() - b0);
  });
  const int64_t idle = static_cast<int64_t>(threads) * (now_ns() - t0) - busy.load();
  g_phase_ns[kWait].fetch_add(std::max<int64_t>(0, idle) / threads, std::memory_order_relaxed);
}

template <typename T>
const InfoNCELoops<T>& loops(int64_t n);
template <>
const InfoNCELoops<float>& loops<float>(int64_t n) {
  return infonce_loops_float(n);
}
template <>
const InfoNCELoops<double>& loops<double>(int64_t) {
  return infonce_loops_double();
}

struct Plan {
  int threads;
  int64_t panel_rows;
  int64_t tile_rows;
  int64_t tile_cols;
};

Plan plan_for(int64_t n, int64_t d, int64_t element_size) {
  const InfoNCECpuTiling t = infonce_cpu_tiling(n, d, element_size);
  return {infonce_cpu_threads(), t.panel_rows, t.tile_rows, t.tile_cols};
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// out = x y^T for one panel, as R x C tiles shared out over the threads (single-threaded BLAS
// calls), or as one call on the BLAS's own threads where it cannot be held to one thread.
void panel_gemm(const Plan& plan, bool tiled, at::Tensor& out, const at::Tensor& x,
                const at::Tensor& y_t, Phase phase) {
  if (!tiled) {
    PhaseTimer timer(1);
    at::mm_out(out, x, y_t);
    timer.lap(phase);
    return;
  }
  const int64_t rows = out.size(0), cols = out.size(1);
  const int64_t tr = ceil_div(rows, plan.tile_rows), tc = ceil_div(cols, plan.tile_cols);
  parallel_items(plan.threads, tr * tc, [&](int64_t k) {
    PhaseTimer timer(plan.threads);
    const int64_t i0 = (k / tc) * plan.tile_rows, j0 = (k % tc) * plan.tile_cols;
    const int64_t ri = std::min(plan.tile_rows, rows - i0),
                  cj = std::min(plan.tile_cols, cols - j0);
    at::Tensor tile = out.narrow(0, i0, ri).narrow(1, j0, cj);
    at::mm_out(tile, x.narrow(0, i0, ri), y_t.narrow(1, j0, cj));
    timer.lap(phase);
  });
}

// The forward's scaled logits, kept for the backward of the same call where they fit in
// kKeepLogitsBytes: the backward then skips its recompute GEMM (3 GEMMs instead of 4). The entry
// holds the forward's row_lse tensor, which autograd saves for that backward; while the entry holds
// it its storage cannot be reused, so matching storages identify the call. One entry: the next
// forward replaces it, the backward that uses it frees it.
constexpr int64_t kKeepLogitsBytes = kMaxPanelBytes;
struct KeptLogits {
  at::Tensor row_lse;
  at::Tensor logits;
};
std::mutex g_kept_mu;
KeptLogits g_kept;
thread_local bool t_backward_expected = false;

template <typename T>
void forward_impl(const at::Tensor& a, const at::Tensor& b, T inv_tau, T lambda, at::Tensor& loss,
                  at::Tensor& row_lse, at::Tensor& col_lse, at::Tensor& diag, at::Tensor& row_max,
                  at::Tensor& col_max) {
  const int64_t kernel_t0 = now_ns();
  const int64_t n = a.size(0);
  const Plan plan = plan_for(n, a.size(1), sizeof(T));
  const int threads = plan.threads;
  // Where the BLAS cannot be told to stay on the calling thread, the panel's GEMM runs from this
  // thread on the BLAS's own threads and only the elementwise passes are shared out.
  SingleThreadedBlas single_blas;
  const bool tiled = single_blas.active() || threads == 1;
  // Keeping the logits needs all N x N of them: the panels become row ranges of one buffer.
  const bool keep =
      t_backward_expected && n * n * static_cast<int64_t>(sizeof(T)) <= kKeepLogitsBytes;
  if (t_backward_expected) {
    std::lock_guard<std::mutex> lk(g_kept_mu);
    g_kept = KeptLogits{};  // an earlier call's logits are no longer wanted
  }
  at::Tensor panel = at::empty({keep ? n : plan.panel_rows, n}, a.options());
  at::Tensor col_sum_t = at::zeros({n}, a.options());
  col_max.fill_(-std::numeric_limits<T>::infinity());

  T* rl = row_lse.data_ptr<T>();
  T* rm = row_max.data_ptr<T>();
  T* dg = diag.data_ptr<T>();
  T* cm = col_max.data_ptr<T>();
  T* cs = col_sum_t.data_ptr<T>();
  const at::Tensor bt = b.t();
  const InfoNCELoops<T>& L = loops<T>(n);

  for (int64_t r0 = 0; r0 < n; r0 += plan.panel_rows) {
    const int64_t rows = std::min(plan.panel_rows, n - r0);
    at::Tensor p = panel.narrow(0, keep ? r0 : 0, rows);
    panel_gemm(plan, tiled, p, a.narrow(0, r0, rows), bt, kForwardGemm);
    T* pp = p.data_ptr<T>();

    parallel_items(threads, ceil_div(rows, kRowTask), [&](int64_t k) {
      const int64_t i0 = k * kRowTask;
      const int64_t i1 = std::min(rows, i0 + kRowTask);
      PhaseTimer timer(threads);
      for (int64_t i = i0; i < i1; ++i) {
        T* row = pp + i * n;
        tm::LseState<T> st = L.scale_row_and_reduce(row, n, inv_tau);
        rl[r0 + i] = tm::lse_value(st);
        rm[r0 + i] = st.max;
        dg[r0 + i] = row[r0 + i];
      }
      timer.lap(kRowPass);
    });

    const int64_t chunks = (n + kColumnChunk - 1) / kColumnChunk;
    parallel_items(threads, chunks, [&](int64_t k) {
      PhaseTimer timer(threads);
      T scratch[kColumnChunk];
      const int64_t c0 = k * kColumnChunk;
      const int64_t c1 = std::min(n, c0 + kColumnChunk);
      L.merge_columns(pp, rows, n, c0, c1, cm, cs, scratch);
      timer.lap(kColumnPass);
    });
  }

  T* cl = col_lse.data_ptr<T>();
  double total = 0;  // sequential sum: deterministic and accurate
  for (int64_t i = 0; i < n; ++i) {
    cl[i] = tm::lse_value(tm::LseState<T>{cm[i], cs[i]});
    total += static_cast<double>(tm::example_loss(rl[i], cl[i], dg[i], lambda));
  }
  loss.fill_(total / static_cast<double>(n));
  if (keep) {
    std::lock_guard<std::mutex> lk(g_kept_mu);
    g_kept = KeptLogits{row_lse, panel};
  }
  g_phase_ns[kKernel].fetch_add(now_ns() - kernel_t0, std::memory_order_relaxed);
  g_calls.fetch_add(1, std::memory_order_relaxed);
}

template <typename T>
void backward_impl(const at::Tensor& a, const at::Tensor& b, T inv_tau, T lambda, T grad_loss,
                   const at::Tensor& row_lse, const at::Tensor& col_lse, at::Tensor& grad_a,
                   at::Tensor& grad_b, double& grad_tau) {
  const int64_t kernel_t0 = now_ns();
  const int64_t n = a.size(0);
  const int64_t d = a.size(1);
  const Plan plan = plan_for(n, d, sizeof(T));
  const int threads = plan.threads;
  SingleThreadedBlas single_blas;
  const bool tiled = single_blas.active() || threads == 1;
  at::Tensor kept;  // the forward's scaled logits, when it kept them for this call
  {
    std::lock_guard<std::mutex> lk(g_kept_mu);
    if (g_kept.logits.defined() && g_kept.logits.scalar_type() == a.scalar_type() &&
        g_kept.logits.size(0) == n && row_lse.storage().is_alias_of(g_kept.row_lse.storage()) &&
        row_lse.data_ptr() == g_kept.row_lse.data_ptr()) {
      kept = std::move(g_kept.logits);
      g_kept = KeptLogits{};
    }
  }
  const bool have_kept = kept.defined();
  // Kept logits are already divided by tau; x * 1 is exact, so the loops give the same bits.
  const T scale = have_kept ? T(1) : inv_tau;
  at::Tensor panel = have_kept ? kept : at::empty({plan.panel_rows, n}, a.options());
  std::vector<double> row_dot(plan.panel_rows);  // per-row sum of dS_ij * S_ij, for the temperature
  const tm::GradWeights<T> w = tm::grad_weights(grad_loss, lambda, n);
  const T* rl = row_lse.data_ptr<T>();
  const T* cl = col_lse.data_ptr<T>();
  const at::Tensor bt = b.t();
  const InfoNCELoops<T>& L = loops<T>(n);
  double dot_total = 0;

  for (int64_t r0 = 0; r0 < n; r0 += plan.panel_rows) {
    const int64_t rows = std::min(plan.panel_rows, n - r0);
    at::Tensor p = panel.narrow(0, have_kept ? r0 : 0, rows);
    at::Tensor a_rows = a.narrow(0, r0, rows);
    if (!have_kept) panel_gemm(plan, tiled, p, a_rows, bt, kBackwardGemm);
    T* pp = p.data_ptr<T>();

    parallel_items(threads, ceil_div(rows, kRowTask), [&](int64_t k) {
      const int64_t i0 = k * kRowTask;
      const int64_t i1 = std::min(rows, i0 + kRowTask);
      PhaseTimer timer(threads);
      for (int64_t i = i0; i < i1; ++i) {
        T* row = pp + i * n;
        const T r = rl[r0 + i];
        const T s_diag = row[r0 + i] * scale;  // read before the row is overwritten with dS
        T acc = L.gradient_row(row, cl, n, r, scale, w);
        // The diagonal's -(w_row + w_col) term, applied once outside the vectorised loop.
        const T delta = w.row + w.col;
        row[r0 + i] -= delta;
        acc -= delta * s_diag;
        row_dot[i] = static_cast<double>(acc);
      }
      timer.lap(kGradientPass);
    });
    for (int64_t i = 0; i < rows; ++i) dot_total += row_dot[i];

    if (tiled) {
      // grad_image rows in blocks of R panel rows, grad_text rows in blocks of R columns: one
      // single-threaded GEMM each, all in one round of tasks.
      const int64_t image_tasks = ceil_div(rows, plan.tile_rows);
      const int64_t text_tasks = ceil_div(n, plan.tile_rows);
      parallel_items(threads, image_tasks + text_tasks, [&](int64_t k) {
        PhaseTimer timer(threads);
        if (k < image_tasks) {
          const int64_t i0 = k * plan.tile_rows, ri = std::min(plan.tile_rows, rows - i0);
          at::Tensor grad_rows = grad_a.narrow(0, r0 + i0, ri);
          at::mm_out(grad_rows, p.narrow(0, i0, ri), b);
          // A plain loop, not mul_: ATen's elementwise ops would open an OpenMP team on this
          // thread. x * inv_tau rounds exactly as mul_ does.
          T* g = grad_rows.data_ptr<T>();
          for (int64_t j = 0, m = ri * d; j < m; ++j) g[j] *= inv_tau;
        } else {
          const int64_t c0 = (k - image_tasks) * plan.tile_rows;
          const int64_t cw = std::min(plan.tile_rows, n - c0);
          grad_b.narrow(0, c0, cw).addmm_(p.narrow(1, c0, cw).t(), a_rows);
        }
        timer.lap(kGradGemm);
      });
    } else {
      PhaseTimer timer(1);
      at::Tensor grad_rows = grad_a.narrow(0, r0, rows);
      at::mm_out(grad_rows, p, b);
      grad_rows.mul_(inv_tau);
      grad_b.addmm_(p.t(), a_rows);
      timer.lap(kGradGemm);
    }
  }
  {
    PhaseTimer timer(1);
    grad_b.mul_(inv_tau);
    timer.lap(kGradGemm);
  }
  grad_tau = -dot_total * static_cast<double>(inv_tau);
  g_phase_ns[kKernel].fetch_add(now_ns() - kernel_t0, std::memory_order_relaxed);
  g_calls.fetch_add(1, std::memory_order_relaxed);
}

at::ScalarType acc_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace

namespace {

// Which loops the CPU supports, capped by CONVIRT_INFONCE_CPU_ISA (read once per process).
enum class Isa { kBaseline, kAvx2, kAvx512 };

Isa chosen_isa() {
  static const Isa isa = [] {
    Isa best = Isa::kBaseline;
#if CONVIRT_HAVE_AVX2_LOOPS
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::kAvx2;
#endif
#if CONVIRT_HAVE_AVX512_LOOPS
    if (best == Isa::kAvx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw"))
      best = Isa::kAvx512;
#endif
    const char* cap = std::getenv("CONVIRT_INFONCE_CPU_ISA");
    if (cap == nullptr || *cap == '\0') return best;
    const std::string c(cap);
    Isa want = best;
    if (c == "baseline")
      want = Isa::kBaseline;
    else if (c == "avx2")
      want = Isa::kAvx2;
    else if (c == "avx512")
      want = Isa::kAvx512;
    else
      CONVIRT_CHECK_VALUE(
          false, "CONVIRT_INFONCE_CPU_ISA must be one of 'baseline', 'avx2', 'avx512', got '", c,
          "'");
    return std::min(want, best);
  }();
  return isa;
}

}  // namespace

const InfoNCELoops<float>& infonce_loops_float(int64_t n) {
  switch (chosen_isa()) {
#if CONVIRT_HAVE_AVX512_LOOPS
    case Isa::kAvx512:
      // 16-lane sums round differently from 8-lane ones. Below kAvx512MinRow, where the passes cost
      // next to nothing, the AVX2 loops run, so that training at ordinary batch sizes gives the
      // same bits on AVX-512 machines as on AVX2-only ones.
      if (n >= kAvx512MinRow) return loops_avx512::kFloat;
      return loops_avx2::kFloat;
#endif
#if CONVIRT_HAVE_AVX2_LOOPS
    case Isa::kAvx2:
      return loops_avx2::kFloat;
#endif
    default:
      return loops_default::kFloat;
  }
}

const InfoNCELoops<double>& infonce_loops_double() {
  return loops_default::kDouble;
}

ExpectBackward::ExpectBackward(bool expected) : previous_(t_backward_expected) {
  t_backward_expected = expected;
}
ExpectBackward::~ExpectBackward() {
  t_backward_expected = previous_;
}

int64_t infonce_panel_rows(int64_t n, int64_t element_size, int64_t budget_bytes) {
  int64_t rows = budget_bytes / std::max<int64_t>(1, n * element_size);
  return std::max<int64_t>(1, std::min(rows, n));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
infonce_forward_cpu(const at::Tensor& image, const at::Tensor& text, const at::Tensor& temperature,
                    double image_to_text_weight) {
  const auto acc = acc_type(image.scalar_type());
  const at::Tensor a = image.to(acc).contiguous();
  const at::Tensor b = text.to(acc).contiguous();
  const int64_t n = a.size(0);
  auto opts = a.options();
  at::Tensor loss = at::empty({}, opts);
  at::Tensor row_lse = at::empty({n}, opts), col_lse = at::empty({n}, opts);
  at::Tensor diag = at::empty({n}, opts), row_max = at::empty({n}, opts);
  at::Tensor col_max = at::empty({n}, opts);
  const double inv_tau = 1.0 / temperature.item<double>();
  AT_DISPATCH_FLOATING_TYPES(acc, "infonce_forward_cpu", [&] {
    forward_impl<scalar_t>(a, b, static_cast<scalar_t>(inv_tau),
                           static_cast<scalar_t>(image_to_text_weight), loss, row_lse, col_lse,
                           diag, row_max, col_max);
  });
  return {loss, row_lse, col_lse, diag, row_max, col_max};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> infonce_backward_cpu(
    const at::Tensor& grad_loss, const at::Tensor& image, const at::Tensor& text,
    const at::Tensor& temperature, double image_to_text_weight, const at::Tensor& row_lse,
    const at::Tensor& col_lse) {
  const auto acc = acc_type(image.scalar_type());
  const at::Tensor a = image.to(acc).contiguous();
  const at::Tensor b = text.to(acc).contiguous();
  at::Tensor grad_a = at::empty_like(a);
  at::Tensor grad_b = at::zeros_like(b);
  double grad_tau = 0;
  const double inv_tau = 1.0 / temperature.item<double>();
  const double g = grad_loss.item<double>();
  AT_DISPATCH_FLOATING_TYPES(acc, "infonce_backward_cpu", [&] {
    backward_impl<scalar_t>(a, b, static_cast<scalar_t>(inv_tau),
                            static_cast<scalar_t>(image_to_text_weight), static_cast<scalar_t>(g),
                            row_lse.to(acc).contiguous(), col_lse.to(acc).contiguous(), grad_a,
                            grad_b, grad_tau);
  });
  at::Tensor grad_temperature = at::full({}, grad_tau, temperature.options());
  return {grad_a.to(image.scalar_type()), grad_b.to(text.scalar_type()), grad_temperature};
}

}  // namespace convirt::detail

namespace convirt {

InfoNCECpuPhaseTimes infonce_cpu_phase_times() {
  using detail::g_phase_ns;
  auto ms = [](int p) { return static_cast<double>(g_phase_ns[p].load()) / 1e6; };
  InfoNCECpuPhaseTimes t;
  t.forward_gemm_ms = ms(detail::kForwardGemm);
  t.row_pass_ms = ms(detail::kRowPass);
  t.column_pass_ms = ms(detail::kColumnPass);
  t.backward_gemm_ms = ms(detail::kBackwardGemm);
  t.gradient_pass_ms = ms(detail::kGradientPass);
  t.grad_gemm_ms = ms(detail::kGradGemm);
  t.wait_ms = ms(detail::kWait);
  t.kernel_ms = ms(detail::kKernel);
  t.calls = detail::g_calls.load();
  return t;
}

void reset_infonce_cpu_phase_times() {
  for (auto& v : detail::g_phase_ns) v.store(0);
  detail::g_calls.store(0);
}

std::string infonce_cpu_isa() {
  switch (detail::chosen_isa()) {
    case detail::Isa::kAvx512:
      return "avx512";
    case detail::Isa::kAvx2:
      return "avx2";
    default:
      return "baseline";
  }
}

int infonce_cpu_threads() {
  return std::max({1, at::get_num_threads(), detail::blas_thread_count()});
}

InfoNCECpuTiling infonce_cpu_tiling(int64_t n, int64_t d, int64_t element_size) {
  CONVIRT_CHECK_VALUE(n >= 1 && d >= 1 && element_size >= 1,
                      "infonce_cpu_tiling needs n, d, element_size >= 1, got ", n, ", ", d, ", ",
                      element_size);
  InfoNCECpuTiling t;
  t.panel_budget_bytes = detail::panel_budget_bytes();
  int64_t rows = detail::infonce_panel_rows(n, element_size, t.panel_budget_bytes);
  if (std::getenv("CONVIRT_INFONCE_PANEL_BYTES") == nullptr) {
    // A constant floor, not one from the thread count: the panel size decides the order of the
    // column merges, which must not depend on the threads.
    rows = std::max(rows, std::min(n, detail::kMinPanelRows));
  }
  // Panels of (nearly) equal size: a short last panel would leave threads idle.
  const int64_t panels = detail::ceil_div(n, rows);
  t.panel_rows = detail::ceil_div(n, panels);
  t.tile_rows = std::min(t.panel_rows, detail::tile_rows_for(d, element_size));
  t.tile_cols = std::min(n, 2 * detail::tile_rows_for(d, element_size));
  return t;
}

}  // namespace convirt

// The fused op's device kernels for CPU tensors (schemas in ../op.cpp).
TORCH_LIBRARY_IMPL(convirt, CPU, m) {
  m.impl("infonce_forward", &convirt::detail::infonce_forward_cpu);
  m.impl("infonce_backward", &convirt::detail::infonce_backward_cpu);
}
