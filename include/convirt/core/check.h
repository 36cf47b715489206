#pragma once
// Argument checks that become typed Python exceptions (ValueError, TypeError, IndexError) through
// the typed TORCH_CHECK_* family, and whose messages name the argument, the expected and the actual
// value.

#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

/// Invalid value (Python ValueError). Example: CONVIRT_CHECK_VALUE(t > 0, "temperature must be > 0,
/// got ", t);
#define CONVIRT_CHECK_VALUE(cond, ...) TORCH_CHECK_VALUE(cond, __VA_ARGS__)
/// Wrong type or dtype (Python TypeError).
#define CONVIRT_CHECK_TYPE(cond, ...) TORCH_CHECK_TYPE(cond, __VA_ARGS__)
/// Out-of-range index (Python IndexError).
#define CONVIRT_CHECK_INDEX(cond, ...) TORCH_CHECK_INDEX(cond, __VA_ARGS__)
/// Anything else that is the caller's fault at run time (Python RuntimeError).
#define CONVIRT_CHECK(cond, ...) TORCH_CHECK(cond, __VA_ARGS__)

namespace convirt::detail {

/// "[4, 3, 2]" for a shape; used in messages so that shapes read the same everywhere.
template <typename Sizes>
std::string shape_str(const Sizes& sizes) {
  std::ostringstream os;
  os << '[';
  bool first = true;
  for (auto s : sizes) {
    if (!first) os << ", ";
    os << s;
    first = false;
  }
  os << ']';
  return os.str();
}

}  // namespace convirt::detail
