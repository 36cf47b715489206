#include "threads.h"

#include <dlfcn.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace convirt::detail {
namespace {

class Pool {
 public:
  explicit Pool(pid_t owner) : owner_(owner) {}
  pid_t owner() const { return owner_; }

  void run(int threads, const std::function<void(int)>& body) {
    std::lock_guard<std::mutex> one_at_a_time(call_mu_);
    if (threads <= 1) {
      body(0);
      return;
    }
    {
      std::unique_lock<std::mutex> lk(mu_);
      while (static_cast<int>(workers_.size()) < threads - 1) {
        const int index = static_cast<int>(workers_.size()) + 1;
        workers_.emplace_back([this, index] { work(index); });
      }
      body_ = &body;
      active_ = threads;
      pending_ = threads - 1;
      error_ = nullptr;
      ++generation_;
    }
    work_cv_.notify_all();
    std::exception_ptr mine;
    try {
      body(0);
    } catch (...) {
      mine = std::current_exception();
    }
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    body_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      // Sleeps (no spinning) until a run that needs this thread starts.
      work_cv_.wait(lk, [&] { return generation_ != seen && index < active_; });
      seen = generation_;
      const std::function<void(int)>* body = body_;
      lk.unlock();
      std::exception_ptr err;
      try {
        (*body)(index);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  const pid_t owner_;
  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* body_ = nullptr;
  uint64_t generation_ = 0;
  int active_ = 0;
  int pending_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static std::mutex mu;
  static Pool* current = nullptr;
  std::lock_guard<std::mutex> lk(mu);
  // A forked child inherits the pool's state but none of its threads: it needs a pool of its own.
  // The old one is leaked on purpose (its threads exist only in the parent).
  if (current == nullptr || current->owner() != ::getpid()) current = new Pool(::getpid());
  return *current;
}

// OpenBLAS's thread control, looked up at run time: LibTorch may be linked against another BLAS,
// and Python loads LibTorch with RTLD_LOCAL, so the symbols are searched in the loaded library too.
struct OpenBlasControl {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
};

const OpenBlasControl& openblas() {
  static const OpenBlasControl ctl = [] {
    OpenBlasControl c;
    void* handles[] = {::dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD),
                       ::dlopen("libopenblas.so", RTLD_LAZY | RTLD_NOLOAD), RTLD_DEFAULT};
    for (void* h : handles) {
      // A name that is not loaded gives nullptr, which glibc's dlsym reads as RTLD_DEFAULT.
      auto get = reinterpret_cast<int (*)()>(::dlsym(h, "openblas_get_num_threads"));
      auto set = reinterpret_cast<void (*)(int)>(::dlsym(h, "openblas_set_num_threads"));
      if (get != nullptr && set != nullptr) {
        c.get = get;
        c.set = set;
        break;
      }
    }
    return c;
  }();
  return ctl;
}

std::mutex blas_mu;
int blas_guards = 0;
int blas_saved = 0;

}  // namespace

void run_on_loss_threads(int threads, const std::function<void(int)>& body) {
  pool().run(threads, body);
}

int blas_thread_count() {
  const OpenBlasControl& c = openblas();
  return c.get != nullptr ? c.get() : 0;
}

SingleThreadedBlas::SingleThreadedBlas() {
  const OpenBlasControl& c = openblas();
  if (c.get == nullptr) return;
  std::lock_guard<std::mutex> lk(blas_mu);
  if (blas_guards++ == 0) {
    blas_saved = c.get();
    if (blas_saved > 1) c.set(1);
  }
  saved_ = blas_saved > 0 ? blas_saved : 1;
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (saved_ == 0) return;
  const OpenBlasControl& c = openblas();
  std::lock_guard<std::mutex> lk(blas_mu);
  if (--blas_guards == 0 && blas_saved > 1) c.set(blas_saved);
}

}  // namespace convirt::detail
