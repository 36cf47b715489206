// safetensors (Hugging Face's tensor file format): an 8-byte header length, a JSON header of names,
// dtypes, shapes and offsets, then the raw data; every field is checked before it is used.
#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/io/safetensors.h>

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

namespace convirt::io {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open weight file '", path, "' for reading");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

const std::map<std::string, at::ScalarType>& st_dtypes() {
  static const std::map<std::string, at::ScalarType> m = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return m;
}

std::string st_name(at::ScalarType t) {
  for (const auto& [name, type] : st_dtypes())
    if (type == t) return name;
  CONVIRT_CHECK_TYPE(false, "safetensors cannot store dtype ", t,
                     "; supported: float64/32/16, bfloat16, int64/32/16/8, uint8, bool");
  return {};
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  std::string buf = read_file(path);
  CONVIRT_CHECK_VALUE(buf.size() >= 8, "'", path, "' is not a safetensors file: ", buf.size(),
                      " bytes, expected at least an 8-byte header length");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<uint8_t>(buf[static_cast<size_t>(k)]);
  CONVIRT_CHECK_VALUE(n <= buf.size() - 8, "'", path,
                      "' is not a valid safetensors file: header length ", n,
                      " exceeds the file size ", buf.size(), " (truncated or another format)");
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(buf.begin() + 8, buf.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "'", path, "': safetensors header is not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(header.is_object(), "'", path, "': safetensors header must be a JSON object");
  const size_t data_start = 8 + n;
  const size_t data_size = buf.size() - data_start;
  SafetensorsFile out;
  try {
    // JSON objects are unordered; keep the tensors in data-offset order, as the writer laid them
    // out.
    // nlohmann converts a floating-point JSON number to an integer with a plain cast, which is
    // undefined for values out of range (1e30): every integer field is checked for its JSON type.
    auto offset_of = [&](const nlohmann::json& v, const std::string& name) {
      CONVIRT_CHECK_VALUE(v.is_number_unsigned(), "'", path,
                          "': malformed safetensors header: tensor '", name,
                          "' has a data offset that is not a non-negative integer: ", v.dump());
      return v.get<uint64_t>();
    };
    auto shape_of = [&](const nlohmann::json& v, const std::string& name) {
      CONVIRT_CHECK_VALUE(v.is_array(), "'", path, "': malformed safetensors header: tensor '",
                          name, "' has a shape that is not an array: ", v.dump());
      std::vector<int64_t> shape;
      for (const auto& d : v) {
        CONVIRT_CHECK_VALUE(
            d.is_number_unsigned() && d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX), "'",
            path, "': malformed safetensors header: tensor '", name,
            "' has a dimension that is not a non-negative 64-bit integer: ", d.dump());
        shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
      }
      return shape;
    };
    std::vector<std::pair<uint64_t, std::string>> order;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it->begin(); m != it->end(); ++m)
          out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
        continue;
      }
      const auto& e = it.value();
      CONVIRT_CHECK_VALUE(e.is_object() && e.contains("dtype") && e.contains("shape") &&
                              e.contains("data_offsets") && e["data_offsets"].size() == 2,
                          "'", path, "': entry '", it.key(),
                          "' lacks dtype, shape or data_offsets");
      order.emplace_back(offset_of(e["data_offsets"][0], it.key()), it.key());
    }
    std::sort(order.begin(), order.end());
    for (const auto& [offset, name] : order) {
      const auto& e = header[name];
      auto dt = e["dtype"].get<std::string>();
      auto found = st_dtypes().find(dt);
      CONVIRT_CHECK_TYPE(found != st_dtypes().end(), "'", path, "': tensor '", name,
                         "' has unsupported dtype ", dt);
      const std::vector<int64_t> shape = shape_of(e["shape"], name);
      const uint64_t begin = offset_of(e["data_offsets"][0], name),
                     end = offset_of(e["data_offsets"][1], name);
      // A crafted header can declare dimensions whose product overflows: checked arithmetic, so
      // that such a tensor is reported as too large instead of wrapping around.
      uint64_t expected = c10::elementSize(found->second);
      bool overflow = false;
      for (auto s : shape) {
        CONVIRT_CHECK_VALUE(s >= 0, "'", path, "': tensor '", name, "' has a negative dimension");
        overflow =
            overflow || __builtin_mul_overflow(expected, static_cast<uint64_t>(s), &expected);
      }
      CONVIRT_CHECK_VALUE(!overflow, "'", path, "': tensor '", name, "' declares shape ",
                          detail::shape_str(shape), ", too large to exist");
      CONVIRT_CHECK_VALUE(begin <= end && end <= data_size, "'", path, "': tensor '", name,
                          "' spans bytes [", begin, ", ", end, ") but the data section holds ",
                          data_size, " bytes (truncated file?)");
      CONVIRT_CHECK_VALUE(end - begin == expected, "'", path, "': tensor '", name, "' has ",
                          end - begin, " bytes, expected ", expected, " for ", dt, " ",
                          detail::shape_str(shape));
      auto t = at::empty(shape, at::TensorOptions().dtype(found->second));
      if (expected > 0) std::memcpy(t.data_ptr(), buf.data() + data_start + begin, expected);
      out.tensors.insert(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    // Fields of the wrong JSON type (a string shape, negative offsets, ...).
    CONVIRT_CHECK_VALUE(false, "'", path, "': malformed safetensors header: ", e.what());
  }
  return out;
}

void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& item : tensors) {
    auto t = item.value().detach().to(at::kCPU).contiguous();
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[item.key()] = {{"dtype", st_name(t.scalar_type())},
                          {"shape", t.sizes().vec()},
                          {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // aligned data, as the reference writer does
  std::string buf;
  buf.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int k = 0; k < 8; ++k) buf.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
  buf += h;
  for (const auto& t : data)
    buf.append(static_cast<const char*>(t.data_ptr()),
               static_cast<size_t>(t.numel()) * t.element_size());
  write_file_atomically(path, std::string_view(buf.data(), buf.size()), "weight file");
}

}  // namespace convirt::io
