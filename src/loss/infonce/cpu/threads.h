#pragma once
// The threads of the fused CPU InfoNCE path (not API).
//
// The loss alternates GEMMs and elementwise passes. Run with LibTorch's OpenMP threads for the
// passes and the BLAS library's own threads for the GEMMs, each pool busy-waits while the other
// works: under OpenMP's default wait policy the idle OpenMP threads spin through every GEMM, and
// OpenBLAS's idle threads spin (up to ~0.1 s) through every pass, so on a small machine half the
// cores do nothing useful. The loss therefore runs everything on one pool of its own whose idle
// threads sleep on a condition variable, and each of its threads calls the BLAS single-threaded on
// its own block.

#include <functional>

namespace convirt::detail {

/// Runs body(t) for t in [0, threads) on the loss's pool (t = 0 on the caller) and returns when all
/// have finished; the first exception thrown by any body is rethrown here. Calls from several
/// threads run one after another. After fork() the child builds a new pool.
void run_on_loss_threads(int threads, const std::function<void(int)>& body);

/// While alive, the BLAS library runs each GEMM on the calling thread alone (OpenBLAS, found at run
/// time), so that several loss threads can run GEMMs side by side without each fanning out onto the
/// BLAS pool. active() is false where the library offers no such control; the caller then runs its
/// GEMMs from one thread with the BLAS's own threading.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
  bool active() const { return saved_ > 0; }

 private:
  int saved_ = 0;
};

/// The BLAS library's own thread count (0 when it cannot be asked).
int blas_thread_count();

}  // namespace convirt::detail
