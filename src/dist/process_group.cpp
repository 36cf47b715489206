// The only file that touches c10d: rendezvous through TCPStore, the Gloo process group, and the
// collectives, each turned into a blocking or awaitable call whose failure names the operation,
// the rank and the timeout. c10d's API moves between LibTorch releases (ProcessGroup vs Backend,
// Work's location); the group is held by its concrete type and work objects through decltype, so
// the code below reads the same against 1.13 and 2.x.

#include <convirt/core/check.h>
#include <convirt/dist/process_group.h>

#include <ATen/ATen.h>

#if CONVIRT_DIST_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace convirt::dist {

bool gloo_available() {
  return CONVIRT_DIST_HAVE_GLOO != 0;
}

CommBackend parse_comm_backend(const std::string& name) {
  if (name == "auto") return CommBackend::kAuto;
  if (name == "gloo") return CommBackend::kGloo;
  CONVIRT_CHECK_VALUE(false, "backend must be one of 'auto', 'gloo', got '", name, "'");
  return CommBackend::kAuto;
}

std::string to_string(CommBackend backend) {
  switch (backend) {
    case CommBackend::kAuto:
      return "auto";
    case CommBackend::kGloo:
      return "gloo";
  }
  return "auto";
}

namespace {

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

int64_t parse_int_env(const char* name, const char* value) {
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value, &end, 10);
  CONVIRT_CHECK_VALUE(errno == 0 && end != value && *end == '\0', "environment variable ", name,
                      " must be an integer, got '", value, "'");
  return parsed;
}

void check_options(const DistributedOptions& o) {
  CONVIRT_CHECK_VALUE(o.world_size() >= 1, "world_size must be >= 1, got ", o.world_size());
  CONVIRT_CHECK_VALUE(o.rank() >= 0 && o.rank() < o.world_size(), "rank must be in [0, ",
                      o.world_size(), "), got ", o.rank());
  CONVIRT_CHECK_VALUE(o.local_rank() >= 0, "local_rank must be >= 0, got ", o.local_rank());
  CONVIRT_CHECK_VALUE(o.timeout_seconds() > 0, "timeout_seconds must be > 0, got ",
                      o.timeout_seconds());
  if (o.world_size() > 1) {
    CONVIRT_CHECK_VALUE(o.master_port() >= 1 && o.master_port() <= 65535,
                        "master_port must be in [1, 65535], got ", o.master_port());
    CONVIRT_CHECK_VALUE(!o.master_addr().empty(), "master_addr must not be empty");
    CONVIRT_CHECK_VALUE(o.gloo_threads() >= 1, "gloo_threads must be >= 1, got ", o.gloo_threads());
  }
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string describe(const char* op, int64_t rank, int64_t world, double timeout) {
  std::ostringstream os;
  os << "convirt.dist: " << op << " on rank " << rank << " of " << world
     << " failed (a rank died, hung past the timeout of " << timeout
     << " s, or called a different collective)";
  return os.str();
}

// Who a rank is, as the operating system knows it: enough to tell later whether that very process
// still runs (a pid alone could be reused by another process once the rank is gone).
struct ProcessIdentity {
  std::string host;
  // Where its pid means something: the machine's boot id and the pid namespace. Host names can
  // repeat across machines, and containers on one machine number their processes separately.
  std::string pid_space;
  long long pid = 0;
  unsigned long long start_time = 0;  // field 22 of /proc/<pid>/stat, in clock ticks since boot
};

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

std::string this_pid_space() {
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char ns[128] = {};
  const ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
  // Without /proc the host name is the best guess left.
  if (boot.empty() || n <= 0) return "host:" + this_host();
  return boot + "/" + std::string(ns, static_cast<size_t>(n));
}

// State and start time of a process from /proc/<pid>/stat; false when it does not exist. The
// command name (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
bool read_proc_stat(long long pid, char* state, unsigned long long* start_time) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int index = 3; fields >> field; ++index) {
    if (index == 3) *state = field.empty() ? '?' : field[0];
    if (index == 22) {
      *start_time = std::strtoull(field.c_str(), nullptr, 10);
      return true;
    }
  }
  return false;
}

ProcessIdentity self_identity() {
  ProcessIdentity id;
  id.host = this_host();
  id.pid_space = this_pid_space();
  id.pid = static_cast<long long>(::getpid());
  char state = '?';
  read_proc_stat(id.pid, &state, &id.start_time);
  return id;
}

std::string encode(const ProcessIdentity& id) {
  return std::to_string(id.pid) + " " + std::to_string(id.start_time) + " " + id.pid_space + " " +
         id.host;
}

ProcessIdentity decode(const std::string& text) {
  ProcessIdentity id;
  std::istringstream in(text);
  in >> id.pid >> id.start_time >> id.pid_space;
  std::getline(in >> std::ws, id.host);
  return id;
}

// Whether the process `id` (on this machine) has ended: gone, a zombie not yet reaped by its
// parent, or its pid now belongs to a newer process.
bool process_ended(const ProcessIdentity& id) {
  char state = '?';
  unsigned long long start = 0;
  if (!read_proc_stat(id.pid, &state, &start)) return true;
  if (state == 'Z' || state == 'X' || state == 'x') return true;
  return id.start_time != 0 && start != id.start_time;
}

}  // namespace

DistributedOptions DistributedOptions::from_environment() {
  DistributedOptions o;
  const char* rank = env_or_null("RANK");
  const char* world = env_or_null("WORLD_SIZE");
  CONVIRT_CHECK_VALUE((rank == nullptr) == (world == nullptr),
                      "RANK and WORLD_SIZE must be set together (torchrun sets both), got RANK=",
                      rank ? rank : "<unset>", " WORLD_SIZE=", world ? world : "<unset>");
  if (rank != nullptr) {
    o.rank(parse_int_env("RANK", rank));
    o.world_size(parse_int_env("WORLD_SIZE", world));
  }
  if (const char* v = env_or_null("LOCAL_RANK")) o.local_rank(parse_int_env("LOCAL_RANK", v));
  if (const char* v = env_or_null("MASTER_ADDR")) o.master_addr(v);
  if (const char* v = env_or_null("MASTER_PORT")) o.master_port(parse_int_env("MASTER_PORT", v));
  if (const char* v = env_or_null("CONVIRT_DIST_TIMEOUT")) {
    char* end = nullptr;
    const double t = std::strtod(v, &end);
    CONVIRT_CHECK_VALUE(end != v && *end == '\0' && t > 0,
                        "environment variable CONVIRT_DIST_TIMEOUT must be a number of seconds > "
                        "0, got '",
                        v, "'");
    o.timeout_seconds(t);
  }
  if (const char* v = env_or_null("CONVIRT_DIST_BACKEND")) o.backend(parse_comm_backend(v));
  if (const char* v = env_or_null("GLOO_SOCKET_IFNAME")) o.gloo_interface(v);
  check_options(o);
  return o;
}

namespace detail {

#if CONVIRT_DIST_HAVE_GLOO
using Group = ::c10d::ProcessGroupGloo;
using WorkPtr = decltype(std::declval<Group&>().barrier());
#endif

struct WorkImpl {
#if CONVIRT_DIST_HAVE_GLOO
  std::vector<WorkPtr> works;
#endif
  std::string what;
  std::shared_ptr<ContextImpl> owner;
  // Copies written back after the collective (inputs that were not contiguous).
  std::vector<std::pair<at::Tensor, at::Tensor>> write_back;
};

struct ContextImpl : std::enable_shared_from_this<ContextImpl> {
  DistributedOptions options;
  std::chrono::milliseconds timeout{0};
#if CONVIRT_DIST_HAVE_GLOO
  c10::intrusive_ptr<::c10d::Store> store;
  c10::intrusive_ptr<Group> group;
#endif
  // After one failed collective the ranks are out of step for good; later calls fail at once with
  // the first error instead of waiting out another timeout.
  std::mutex mutex;
  std::string failure;
  // Every rank's process, exchanged at the rendezvous: a failed collective names the ranks whose
  // process has ended, so the survivor's error says which rank was lost.
  std::vector<ProcessIdentity> peers;

  // The ranks on this machine whose process has ended, e.g. "lost rank 1 (process 4242 on node7
  // has ended)". Gloo reports a dead peer as a closed connection, which can come a moment before
  // the kernel marks the process as ended, so this looks for up to a second.
  std::string lost_ranks() const {
    if (peers.empty()) return "";
    const std::string here = this_pid_space();
    std::vector<std::string> lost, unchecked;
    for (int attempt = 0; attempt < 20 && lost.empty(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      unchecked.clear();
      for (size_t r = 0; r < peers.size(); ++r) {
        if (static_cast<int64_t>(r) == options.rank()) continue;
        if (peers[r].pid_space != here) {
          unchecked.push_back(std::to_string(r));
        } else if (process_ended(peers[r])) {
          lost.push_back("rank " + std::to_string(r) + " (process " + std::to_string(peers[r].pid) +
                         " on " + peers[r].host + " has ended)");
        }
      }
    }
    std::string out;
    for (const auto& l : lost) out += (out.empty() ? "lost " : ", lost ") + l;
    if (out.empty()) out = "no other rank's process on this machine has ended (one hung";
    if (lost.empty()) out += unchecked.empty() ? ")" : ", or one on another machine was lost)";
    if (!unchecked.empty()) {
      std::string list;
      for (const auto& u : unchecked) list += (list.empty() ? "" : ", ") + u;
      out += "; ranks on other machines not checked from here: " + list;
    }
    return out;
  }

  void check_usable(const char* op) {
    std::lock_guard<std::mutex> lock(mutex);
    CONVIRT_CHECK(failure.empty(), "convirt.dist: ", op, " on rank ", options.rank(),
                  ": the process group is unusable after an earlier failure: ", failure);
  }

  [[noreturn]] void fail(const std::string& what, const std::string& cause) {
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      first = failure.empty();
    }
    // Which rank is gone is what the user needs first; Gloo's own text (a closed connection, a
    // timeout) follows.
    const std::string lost = first ? lost_ranks() : "";
    const std::string msg = what + (lost.empty() ? "" : ": " + lost) + ": " + cause;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (failure.empty()) failure = msg;
    }
    CONVIRT_CHECK(false, msg);
    std::abort();  // unreachable: CONVIRT_CHECK(false) throws
  }

#if CONVIRT_DIST_HAVE_GLOO
  void wait(WorkImpl& w) {
    try {
      // Gloo enforces the timeout per operation; the bound here is a backstop against a stuck
      // transport.
      for (auto& work : w.works) {
        if (!work->wait(timeout * 2 + std::chrono::milliseconds(5000))) {
          fail(w.what, "did not complete in time");
        }
      }
    } catch (const c10::Error& e) {
      fail(w.what, e.what_without_backtrace());
    } catch (const std::exception& e) {
      fail(w.what, e.what());
    }
    for (auto& [dst, src] : w.write_back) dst.copy_(src);
    w.write_back.clear();
  }

  template <typename Launch>
  std::shared_ptr<WorkImpl> launch(const char* op, Launch&& launch_fn) {
    check_usable(op);
    auto w = std::make_shared<WorkImpl>();
    w->what = describe(op, options.rank(), options.world_size(), options.timeout_seconds());
    w->owner = shared_from_this();
    try {
      w->works = launch_fn(*w);
    } catch (const c10::Error& e) {
      fail(w->what, e.what_without_backtrace());
    } catch (const std::exception& e) {
      fail(w->what, e.what());
    }
    return w;
  }
#endif
};

}  // namespace detail

void PendingWork::wait() {
  if (!impl_) return;
#if CONVIRT_DIST_HAVE_GLOO
  auto impl = std::move(impl_);
  impl->owner->wait(*impl);
#else
  impl_.reset();
#endif
}

namespace {

#if CONVIRT_DIST_HAVE_GLOO
::c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ::c10d::ReduceOp::SUM;
    case ReduceOp::kMax:
      return ::c10d::ReduceOp::MAX;
    case ReduceOp::kMin:
      return ::c10d::ReduceOp::MIN;
  }
  return ::c10d::ReduceOp::SUM;
}

// c10d's Gloo collectives need dense, contiguous tensors; others go through a contiguous copy that
// is written back after the operation.
at::Tensor contiguous_for(detail::WorkImpl& w, const at::Tensor& t) {
  if (t.is_contiguous()) return t;
  at::Tensor c = t.contiguous();
  w.write_back.emplace_back(t, c);
  return c;
}
#endif

void check_tensor(const at::Tensor& t, const char* op) {
  CONVIRT_CHECK_VALUE(t.defined(), op, ": tensor must be defined");
  CONVIRT_CHECK_VALUE(t.layout() == at::kStrided, op, ": tensor must be dense (strided), got ",
                      t.layout());
}

}  // namespace

DistributedContext::DistributedContext() : DistributedContext(DistributedOptions()) {}

DistributedContext::DistributedContext(const DistributedOptions& options)
    : impl_(std::make_shared<detail::ContextImpl>()) {
  check_options(options);
  impl_->options = options;
  impl_->timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds() * 1000.0 + 0.5));
  if (options.world_size() == 1) return;
#if CONVIRT_DIST_HAVE_GLOO
  std::ostringstream where_os;
  where_os << "convirt.dist: rendezvous on rank " << options.rank() << " of "
           << options.world_size() << " at " << options.master_addr() << ":"
           << options.master_port() << " failed (not every rank arrived within the timeout of "
           << options.timeout_seconds() << " s)";
  const std::string where = where_os.str();
  try {
    ::c10d::TCPStoreOptions store_opts;
    store_opts.port = static_cast<std::uint16_t>(options.master_port());
    store_opts.isServer = options.rank() == 0;
    store_opts.numWorkers = static_cast<std::size_t>(options.world_size());
    store_opts.waitWorkers = true;
    store_opts.timeout = impl_->timeout;
    impl_->store = c10::make_intrusive<::c10d::TCPStore>(options.master_addr(), store_opts);
    const std::string identity = encode(self_identity());
    impl_->store->set("convirt/process/" + std::to_string(options.rank()),
                      std::vector<uint8_t>(identity.begin(), identity.end()));

    auto gloo_opts = detail::Group::Options::create(impl_->timeout);
    if (!options.gloo_interface().empty()) {
      gloo_opts->devices.push_back(
          detail::Group::createDeviceForInterface(options.gloo_interface()));
    } else if (is_loopback(options.master_addr())) {
      // All ranks are on this machine: talk over loopback, whatever the host name resolves to.
      gloo_opts->devices.push_back(detail::Group::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_opts->devices.push_back(detail::Group::createDefaultDevice());
    }
    gloo_opts->threads = static_cast<int>(options.gloo_threads());
    impl_->group =
        c10::make_intrusive<detail::Group>(impl_->store, static_cast<int>(options.rank()),
                                           static_cast<int>(options.world_size()), gloo_opts);
    // Every rank set its key before joining the group, so these are all there now.
    for (int64_t r = 0; r < options.world_size(); ++r) {
      const auto bytes = impl_->store->get("convirt/process/" + std::to_string(r));
      impl_->peers.push_back(decode(std::string(bytes.begin(), bytes.end())));
    }
  } catch (const c10::Error& e) {
    CONVIRT_CHECK(false, where, ": ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    CONVIRT_CHECK(false, where, ": ", e.what());
  }
#else
  CONVIRT_CHECK(false, "convirt.dist: world_size ", options.world_size(),
                " needs a process group, but this build of convirt has no Gloo (the gloo headers "
                "were not found when it was configured)");
#endif
}

DistributedContext DistributedContext::from_environment() {
  return DistributedContext(DistributedOptions::from_environment());
}

int64_t DistributedContext::rank() const {
  return impl_->options.rank();
}
int64_t DistributedContext::world_size() const {
  return impl_->options.world_size();
}
int64_t DistributedContext::local_rank() const {
  return impl_->options.local_rank();
}
const DistributedOptions& DistributedContext::options() const {
  return impl_->options;
}

PendingWork DistributedContext::all_reduce_async(std::vector<torch::Tensor>& tensors,
                                                 [[maybe_unused]] ReduceOp op) const {
  for (const auto& t : tensors) check_tensor(t, "all_reduce");
  PendingWork pending;
  if (world_size() == 1 || tensors.empty()) return pending;
#if CONVIRT_DIST_HAVE_GLOO
  pending.impl_ = impl_->launch("all_reduce", [&](detail::WorkImpl& w) {
    ::c10d::AllreduceOptions opts;
    opts.reduceOp = to_c10d(op);
    opts.timeout = impl_->timeout;
    std::vector<at::Tensor> ts;
    for (const auto& t : tensors) ts.push_back(contiguous_for(w, t));
    // Gloo reduces a list of tensors as one logical tensor spread over devices; one call per
    // tensor keeps each tensor's reduction independent.
    std::vector<detail::WorkPtr> works;
    for (auto& t : ts) {
      std::vector<at::Tensor> one{t};
      works.push_back(impl_->group->allreduce(one, opts));
    }
    return works;
  });
#endif
  return pending;
}

void DistributedContext::all_reduce_(std::vector<torch::Tensor>& tensors, ReduceOp op) const {
  all_reduce_async(tensors, op).wait();
}

void DistributedContext::all_reduce_(torch::Tensor& tensor, ReduceOp op) const {
  std::vector<torch::Tensor> ts{tensor};
  all_reduce_(ts, op);
}

std::vector<torch::Tensor> DistributedContext::all_gather(const torch::Tensor& tensor) const {
  check_tensor(tensor, "all_gather");
  if (world_size() == 1) return {tensor.clone()};
  std::vector<std::vector<at::Tensor>> outputs(1);
#if CONVIRT_DIST_HAVE_GLOO
  for (int64_t r = 0; r < world_size(); ++r) outputs[0].push_back(at::empty_like(tensor));
  auto w = impl_->launch("all_gather", [&](detail::WorkImpl&) {
    ::c10d::AllgatherOptions opts;
    opts.timeout = impl_->timeout;
    std::vector<at::Tensor> input{tensor.contiguous()};
    return std::vector<detail::WorkPtr>{impl_->group->allgather(outputs, input, opts)};
  });
  impl_->wait(*w);
#endif
  return outputs[0];
}

std::vector<int64_t> DistributedContext::all_gather_sizes(int64_t rows) const {
  if (world_size() == 1) return {rows};
  const auto parts = all_gather(at::full({1}, rows, at::TensorOptions().dtype(at::kLong)));
  std::vector<int64_t> sizes;
  for (const auto& p : parts) sizes.push_back(p.item<int64_t>());
  return sizes;
}

torch::Tensor DistributedContext::all_gather_rows(const torch::Tensor& tensor) const {
  check_tensor(tensor, "all_gather_rows");
  CONVIRT_CHECK_VALUE(tensor.dim() >= 1, "all_gather_rows: tensor must have at least 1 dim, got ",
                      convirt::detail::shape_str(tensor.sizes()));
  if (world_size() == 1) return tensor.clone();
  return all_gather_rows(tensor, all_gather_sizes(tensor.size(0)));
}

torch::Tensor DistributedContext::all_gather_rows(const torch::Tensor& tensor,
                                                  const std::vector<int64_t>& sizes) const {
  check_tensor(tensor, "all_gather_rows");
  CONVIRT_CHECK_VALUE(tensor.dim() >= 1, "all_gather_rows: tensor must have at least 1 dim, got ",
                      convirt::detail::shape_str(tensor.sizes()));
  CONVIRT_CHECK_VALUE(static_cast<int64_t>(sizes.size()) == world_size(),
                      "all_gather_rows: sizes must hold one row count per rank (", world_size(),
                      "), got ", sizes.size());
  CONVIRT_CHECK_VALUE(sizes[rank()] == tensor.size(0), "all_gather_rows: sizes[", rank(),
                      "] must be this rank's row count ", tensor.size(0), ", got ", sizes[rank()]);
  if (world_size() == 1) return tensor.clone();
  int64_t max_rows = 0;
  for (auto s : sizes) max_rows = std::max(max_rows, s);
  // Gloo's all-gather wants equal shapes: pad every shard to the largest, then drop the padding.
  at::Tensor padded = tensor;
  if (tensor.size(0) < max_rows) {
    auto shape = tensor.sizes().vec();
    shape[0] = max_rows - tensor.size(0);
    padded = at::cat({tensor, at::zeros(shape, tensor.options())}, 0);
  }
  auto parts = all_gather(padded);
  for (size_t r = 0; r < parts.size(); ++r) parts[r] = parts[r].narrow(0, 0, sizes[r]);
  return at::cat(parts, 0);
}

void DistributedContext::broadcast_(torch::Tensor& tensor, int64_t root) const {
  check_tensor(tensor, "broadcast");
  CONVIRT_CHECK_INDEX(root >= 0 && root < world_size(), "broadcast: root must be in [0, ",
                      world_size(), "), got ", root);
  if (world_size() == 1) return;
#if CONVIRT_DIST_HAVE_GLOO
  auto w = impl_->launch("broadcast", [&](detail::WorkImpl& work) {
    ::c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.rootTensor = 0;
    opts.timeout = impl_->timeout;
    std::vector<at::Tensor> ts{contiguous_for(work, tensor)};
    return std::vector<detail::WorkPtr>{impl_->group->broadcast(ts, opts)};
  });
  impl_->wait(*w);
#endif
}

void DistributedContext::barrier() const {
  if (world_size() == 1) return;
#if CONVIRT_DIST_HAVE_GLOO
  auto w = impl_->launch("barrier", [&](detail::WorkImpl&) {
    ::c10d::BarrierOptions opts;
    opts.timeout = impl_->timeout;
    return std::vector<detail::WorkPtr>{impl_->group->barrier(opts)};
  });
  impl_->wait(*w);
#endif
}

void run_on_main(const DistributedContext& ctx, const std::function<void()>& fn,
                 const std::string& what) {
  std::exception_ptr error;
  if (ctx.is_main()) {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (ctx.is_distributed()) {
    at::Tensor status = at::full({1}, error ? 1 : 0, at::TensorOptions().dtype(at::kInt));
    ctx.all_reduce_(status, ReduceOp::kMax);
    if (!ctx.is_main()) {
      CONVIRT_CHECK(status.item<int>() == 0, "convirt.dist: rank 0 failed while ", what, "; rank ",
                    ctx.rank(), " stops too (see rank 0's log for the cause)");
    }
  }
  if (error) std::rethrow_exception(error);
}

void check_resume_world_size(int64_t saved_world_size, const DistributedContext& ctx) {
  CONVIRT_CHECK_VALUE(saved_world_size == ctx.world_size(),
                      "resuming needs the world size the checkpoint was written with: saved with ",
                      saved_world_size, " ranks, now running ", ctx.world_size(),
                      " (the shards of each global batch and the per-rank random streams depend "
                      "on it)");
}

}  // namespace convirt::dist
