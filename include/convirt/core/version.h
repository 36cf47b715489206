#pragma once

#include <convirt/core/config.h>

#include <string>

namespace convirt {

/// The library's version, "MAJOR.MINOR.PATCH".
std::string version();
/// Whether CUDA kernels were compiled and registered for CUDA tensors in this build.
bool cuda_kernels_available();

}  // namespace convirt
