#pragma once
// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the raw little-endian tensor bytes. No code runs on load, which is why HF prefers it.

#include <convirt/io/state_dict.h>

#include <map>
#include <string>

namespace convirt::io {

/// A safetensors file's tensors and its string metadata ("__metadata__").
struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads a whole .safetensors file. Errors (ValueError) name the file and what is wrong: too short,
/// header length beyond the file, bad JSON, unknown dtype, offsets outside the data or not matching
/// dtype x shape.
///
/// Example:
///   auto file = convirt::io::read_safetensors("model.safetensors");
///   torch::Tensor w = file.tensors["embeddings.word_embeddings.weight"];
SafetensorsFile read_safetensors(const std::string& path);

/// Writes tensors (any device, any layout: they are made contiguous CPU copies) and metadata.
/// Supported dtypes: float64/32/16, bfloat16, int64/32/16/8, uint8, bool. The file is written to a
/// temporary name and renamed, so a crash never leaves a truncated file under `path`.
///
/// Example:
///   convirt::io::write_safetensors("weights.safetensors", sd, {{"format", "pt"}});
void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace convirt::io
