// The torch.save reader (read_torch_state_dict), as pytorch_model.bin and torchvision .pth files
// are read. Two modes, picked by the first byte:
//  - odd: the rest is the whole file (zip directory, record table, truncation);
//  - even: the rest becomes data.pkl inside a well-formed archive that also holds four storage
//    records, so that mutations reach convirt's restricted unpickler instead of stopping at the
//    zip checksums.
#include <convirt/io/torch_file.h>

#include <caffe2/serialize/inline_container.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fz = convirt::fuzz;
  if (size < 1) return 0;
  std::string path;
  if (data[0] & 1) {
    path = fz::write_file("raw/pytorch_model.bin", data + 1, size - 1);
  } else {
    path = (fz::scratch_dir() / "archive.bin").string();
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("data.pkl", data + 1, size - 1);
    static const std::vector<char> storage(64, '\1');
    for (int k = 0; k < 4; ++k) {
      writer.writeRecord("data/" + std::to_string(k), storage.data(), storage.size());
    }
    writer.writeEndOfFile();
  }
  fz::expect_clean([&] {
    auto sd = convirt::io::read_torch_state_dict(path);
    for (const auto& item : sd) {
      const auto& t = item.value();
      // Touch every element: a view reaching past its storage is a sanitizer report here.
      if (t.numel() > 0) t.to(c10::kDouble).sum();
    }
  });
  return 0;
}
