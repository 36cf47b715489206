#pragma once
// LibTorch starts with one intra-op thread on some builds (Debian's among them) although the
// machine has more cores. convirt sets the count once, from the user's setting or the hardware.

namespace convirt {

/// Sets LibTorch's intra-op thread count. `threads` > 0 is used as given; 0 means "decide": the
/// CONVIRT_NUM_THREADS or OMP_NUM_THREADS environment variable when set, else the hardware's core
/// count. Returns the count now in effect. Example: convirt::set_num_threads(0);  // all cores
/// unless the environment says otherwise
int set_num_threads(int threads = 0);

/// The count set_num_threads(0) would choose, without changing anything.
int default_num_threads();

}  // namespace convirt
