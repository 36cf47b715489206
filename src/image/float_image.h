#pragma once
// The input contract every image op shares: float32, contiguous, [C, H, W] or [B, C, H, W], on the
// CPU; uint8 is scaled to [0, 1]. One definition, so the functional ops, the transforms and the
// preprocessing steps reject the same inputs with the same messages.

#include <convirt/core/check.h>

#include <ATen/ATen.h>

namespace convirt::image::detail {

using convirt::detail::shape_str;

// Float32, contiguous, [C, H, W] or [B, C, H, W]; uint8 scaled to [0, 1]. `fn` names the caller in
// errors.
inline at::Tensor as_float_image(const at::Tensor& image, const char* fn) {
  CONVIRT_CHECK_VALUE(image.defined(), fn, ": image is undefined");
  CONVIRT_CHECK_VALUE(image.dim() == 3 || image.dim() == 4, fn,
                      ": image must be [C, H, W] or [B, C, H, W], got ", shape_str(image.sizes()));
  CONVIRT_CHECK_VALUE(image.size(-1) > 0 && image.size(-2) > 0 && image.size(-3) > 0, fn,
                      ": image must have non-empty C, H and W, got ", shape_str(image.sizes()));
  CONVIRT_CHECK_VALUE(image.device().is_cpu(), fn, ": image must be on the CPU, got ",
                      image.device());
  const auto dtype = image.scalar_type();
  if (dtype == at::kByte) return image.to(at::kFloat).div_(255.0f).contiguous();
  CONVIRT_CHECK_TYPE(at::isFloatingType(dtype), fn, ": image must be float or uint8, got ", dtype);
  return image.to(at::kFloat).contiguous();
}

}  // namespace convirt::image::detail
