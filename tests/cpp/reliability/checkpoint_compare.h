#pragma once
// Comparing two trainer checkpoints by content. Their bytes differ between identical runs: LibTorch
// names each Adam state entry after the address of its parameter's TensorImpl, so the names (and
// the zip layout) change from process to process while every tensor is the same.

#include <convirt/train/checkpoint.h>

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace convirt::test {

/// Every tensor and string of a checkpoint, by path, with parameter addresses replaced by the
/// position of the parameter in its optimiser group.
struct FlatCheckpoint {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> strings;
};

inline void flatten_archive(torch::serialize::InputArchive& archive, const std::string& prefix,
                            FlatCheckpoint& out) {
  for (const std::string& key : archive.keys()) {
    c10::IValue value;
    if (archive.try_read(key, value)) {
      if (value.isTensor()) {
        out.tensors[prefix + key] = value.toTensor();
        continue;
      }
      if (value.isString()) {
        out.strings[prefix + key] = value.toStringRef();
        continue;
      }
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) flatten_archive(sub, prefix + key + "/", out);
  }
}

inline FlatCheckpoint flatten_checkpoint(const std::string& path) {
  const std::string payload = train::read_checkpoint_file(path);
  torch::serialize::InputArchive archive;
  archive.load_from(payload.data(), payload.size());
  FlatCheckpoint raw;
  flatten_archive(archive, "", raw);
  // `.../params/<i>` holds the address-derived name of parameter i's state entry.
  std::map<std::string, std::string> rename;
  for (auto it = raw.strings.begin(); it != raw.strings.end();) {
    if (it->first.find("/params/") != std::string::npos) {
      rename[it->second] = "param(" + it->first + ")";
      it = raw.strings.erase(it);
    } else {
      ++it;
    }
  }
  FlatCheckpoint out;
  auto canonical = [&](const std::string& key) {
    std::string result;
    size_t start = 0;
    while (start <= key.size()) {
      size_t end = key.find('/', start);
      if (end == std::string::npos) end = key.size();
      const std::string part = key.substr(start, end - start);
      const auto r = rename.find(part);
      result += r == rename.end() ? part : r->second;
      if (end < key.size()) result += '/';
      start = end + 1;
    }
    return result;
  };
  for (auto& [key, t] : raw.tensors) out.tensors[canonical(key)] = t;
  for (auto& [key, s] : raw.strings) out.strings[canonical(key)] = s;
  return out;
}

/// Paths whose content differs between two checkpoints (empty when they hold the same state).
inline std::vector<std::string> checkpoint_differences(const std::string& a, const std::string& b) {
  const FlatCheckpoint x = flatten_checkpoint(a), y = flatten_checkpoint(b);
  std::vector<std::string> diff;
  for (const auto& [key, t] : x.tensors) {
    const auto it = y.tensors.find(key);
    if (it == y.tensors.end()) {
      diff.push_back(key + " (only in " + a + ")");
    } else if (t.scalar_type() != it->second.scalar_type() ||
               !t.sizes().equals(it->second.sizes()) || !torch::equal(t, it->second)) {
      diff.push_back(key);
    }
  }
  for (const auto& [key, t] : y.tensors)
    if (x.tensors.count(key) == 0) diff.push_back(key + " (only in " + b + ")");
  if (x.strings != y.strings) diff.push_back("string entries");
  if (x.tensors.empty()) diff.push_back("no tensors read from " + a);
  return diff;
}

}  // namespace convirt::test
