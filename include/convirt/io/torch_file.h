#pragma once
// State dicts in the format of Python's torch.save (a zip archive holding a pickle, data.pkl, and
// one record per storage): torchvision checkpoints, Hugging Face pytorch_model.bin. Reading uses
// convirt's own restricted unpickler, which only builds dicts, tuples, lists, scalars and tensors
// and never executes anything; LibTorch's torch::pickle_load rejects the OrderedDict-with-_metadata
// that Module.state_dict() pickles, which is every real checkpoint.

#include <convirt/io/state_dict.h>

#include <string>

namespace convirt::io {

/// Reads a state dict saved with torch.save(model.state_dict(), path) (torch >= 1.6 zip format). A
/// top level {"state_dict": {...}} wrapper (training checkpoints) is unwrapped. Errors name the
/// file and the problem: not a zip archive (including the pre-1.6 legacy format), truncated,
/// missing records, a value that is not a tensor.
///
/// Example:
///   auto sd = convirt::io::read_torch_state_dict("resnet50.pth");
StateDict read_torch_state_dict(const std::string& path);

/// Writes `state` so that Python's torch.load(path) returns a dict of str -> Tensor (usable with
/// Module.load_state_dict). Written to a temporary name and renamed.
///
/// Example:
///   convirt::io::write_torch_state_dict("pytorch_model.bin", sd);
void write_torch_state_dict(const std::string& path, const StateDict& state);

}  // namespace convirt::io
