#include <convirt/core/version.h>

namespace convirt {

std::string version() {
  return CONVIRT_VERSION_STRING;
}

bool cuda_kernels_available() {
  return CONVIRT_WITH_CUDA_TORCH != 0;
}

}  // namespace convirt
