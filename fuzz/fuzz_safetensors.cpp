// The safetensors reader (read_safetensors, and read_state_dict's detection by content) on
// arbitrary files: every tensor it returns must lie inside the file's data.
#include <convirt/io/safetensors.h>
#include <convirt/io/state_dict.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convirt::fuzz::write_file("model.safetensors", data, size);
  convirt::fuzz::expect_clean([&] {
    auto file = convirt::io::read_safetensors(path);
    for (const auto& item : file.tensors) {
      const auto& t = item.value();
      if (static_cast<size_t>(t.numel() * t.element_size()) > size) std::abort();
      // Touch every byte: a view past the end of the buffer is a sanitizer report here.
      if (t.numel() > 0) t.to(c10::kDouble).sum();
    }
  });
  convirt::fuzz::expect_clean([&] { convirt::io::read_state_dict(path); });
  return 0;
}
