// State dict plumbing and the two file formats: safetensors and torch.save's zip + pickle.
#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/io/safetensors.h>
#include <convirt/io/state_dict.h>
#include <convirt/io/torch_file.h>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace convirt::io {
namespace {

std::string join(const std::vector<std::string>& names, size_t limit = 50) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < limit; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > limit) os << ", ... (" << names.size() - limit << " more)";
  return os.str();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open weight file '", path, "' for reading");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// Writes through a temporary sibling and renames, so readers never see a half-written file.
void write_file_atomic(const std::string& path, const char* data, size_t size) {
  write_file_atomically(path, std::string_view(data, size), "weight file");
}

// ---------------------------------------------------------------- safetensors dtypes
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

// ---------------------------------------------------------------- restricted unpickler
struct PyObj;
// Objects are owned by the Unpickler's arena, not by each other: a pickle can make a list contain
// itself (memo + APPEND) or nest a million levels deep, which reference counting would leak or
// destroy recursively until the stack overflows.
using PyPtr = PyObj*;
struct PyObj {
  enum Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kTensor,
    kStorage,
    kOther
  };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string value, or "module.name" of a global
  std::vector<PyPtr> items;
  std::vector<std::pair<PyPtr, PyPtr>> dict;
  at::Tensor tensor;  // tensor, or the flat storage
};

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> m = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte}};
  auto it = m.find(global);
  CONVIRT_CHECK_TYPE(it != m.end(), "unsupported storage type '", global, "' in torch file");
  return it->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& file, caffe2::serialize::PyTorchStreamReader& reader,
            const char* data, size_t size)
      : file_(file), reader_(reader), p_(data), end_(data + size) {}

  PyPtr run() {
    while (true) {
      uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case '.':
          return pop();  // STOP
        case 'c': {      // GLOBAL
          auto mod = line(), name = line();
          auto g = make(PyObj::kGlobal);
          g->s = mod + "." + name;
          push(g);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), mod = pop();
          auto g = make(PyObj::kGlobal);
          g->s = mod->s + "." + name->s;
          push(g);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;
        case 'r':
          memo_[u32()] = top();
          break;
        case 0x94:
          memo_[memo_.size()] = top();
          break;
        case 'h':
          push(memo(byte()));
          break;
        case 'j':
          push(memo(u32()));
          break;
        case '(':
          marks_.push_back(stack_.size());
          break;
        case ')':
          push(make(PyObj::kTuple));
          break;
        case ']':
          push(make(PyObj::kList));
          break;
        case '}':
          push(make(PyObj::kDict));
          break;
        case 't':
        case 'l': {
          auto t = make(op == 't' ? PyObj::kTuple : PyObj::kList);
          t->items = pop_mark();
          push(t);
          break;
        }
        case 'd': {
          auto items = pop_mark();
          auto d = make(PyObj::kDict);
          for (size_t k = 0; k + 1 < items.size(); k += 2)
            d->dict.emplace_back(items[k], items[k + 1]);
          push(d);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          size_t n = op - 0x84;
          auto t = make(PyObj::kTuple);
          t->items.resize(n);
          for (size_t k = n; k-- > 0;) t->items[k] = pop();
          push(t);
          break;
        }
        case 'a': {
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto items = pop_mark();
          auto& l = top()->items;
          l.insert(l.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          auto v = pop(), k = pop();
          top()->dict.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto items = pop_mark();
          for (size_t k = 0; k + 1 < items.size(); k += 2)
            top()->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'N':
          push(make(PyObj::kNone));
          break;
        case 0x88:
        case 0x89: {
          auto b = make(PyObj::kBool);
          b->i = op == 0x88;
          push(b);
          break;
        }
        case 'J':
          push_int(static_cast<int32_t>(u32()));
          break;
        case 'K':
          push_int(byte());
          break;
        case 'M': {
          uint32_t lo = byte(), hi = byte();
          push_int(lo | (hi << 8));
          break;
        }
        case 0x8a: {  // LONG1: little-endian two's complement
          size_t n = byte();
          CONVIRT_CHECK_VALUE(n <= 8, "integer too large in ", file_);
          const char* b = bytes(n);
          int64_t v = 0;
          for (size_t k = 0; k < n; ++k)
            v |= static_cast<int64_t>(static_cast<uint8_t>(b[k])) << (8 * k);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v -= int64_t(1) << (8 * n);
          push_int(v);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          const char* b = bytes(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(b[k]);
          auto f = make(PyObj::kFloat);
          std::memcpy(&f->f, &bits, 8);
          push(f);
          break;
        }
        case 'X':
          push_str(u32());
          break;
        case 0x8c:
          push_str(byte());
          break;
        case 0x8d: {
          uint64_t lo = u32(), hi = u32();
          push_str(lo | (hi << 32));
          break;
        }
        case 'Q':
          push(persistent_load(pop()));
          break;
        case 'R': {
          auto args = pop(), fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(), cls = pop();
          push(reduce(cls, args));
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: object state (OrderedDict._metadata) is not needed
        default:
          CONVIRT_CHECK_VALUE(false, "unsupported pickle opcode 0x", std::hex, int(op), " in ",
                              file_, " (convirt reads state dicts of tensors only)");
      }
    }
  }

 private:
  uint8_t byte() { return static_cast<uint8_t>(*bytes(1)); }
  const char* bytes(size_t n) {
    CONVIRT_CHECK_VALUE(static_cast<size_t>(end_ - p_) >= n, "truncated pickle data in ", file_);
    const char* r = p_;
    p_ += n;
    return r;
  }
  uint32_t u32() {
    const char* b = bytes(4);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  PyPtr make(PyObj::Kind k) {
    arena_.push_back(std::make_unique<PyObj>());
    arena_.back()->kind = k;
    return arena_.back().get();
  }
  std::string line() {
    const char* start = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    CONVIRT_CHECK_VALUE(p_ < end_, "truncated pickle data in ", file_);
    std::string s(start, p_);
    ++p_;
    return s;
  }
  void push(PyPtr v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t v) {
    auto o = make(PyObj::kInt);
    o->i = v;
    push(o);
  }
  void push_str(uint64_t n) {
    auto o = make(PyObj::kStr);
    o->s.assign(bytes(n), n);
    push(o);
  }
  PyPtr pop() {
    CONVIRT_CHECK_VALUE(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()),
                        "malformed pickle data in ", file_, " (stack underflow)");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyPtr top() {
    CONVIRT_CHECK_VALUE(!stack_.empty(), "malformed pickle data in ", file_);
    return stack_.back();
  }
  PyPtr memo(size_t k) {
    auto it = memo_.find(k);
    CONVIRT_CHECK_VALUE(it != memo_.end(), "malformed pickle data in ", file_, " (memo ", k, ")");
    return it->second;
  }
  std::vector<PyPtr> pop_mark() {
    CONVIRT_CHECK_VALUE(!marks_.empty(), "malformed pickle data in ", file_, " (no mark)");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyPtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  PyPtr persistent_load(const PyPtr& pid) {
    CONVIRT_CHECK_VALUE(
        pid->kind == PyObj::kTuple && pid->items.size() >= 5 && pid->items[0]->s == "storage",
        "unsupported persistent id in ", file_);
    auto dtype = storage_dtype(pid->items[1]->s);
    const std::string& key = pid->items[2]->s;
    int64_t numel = pid->items[4]->i;
    CONVIRT_CHECK_VALUE(numel >= 0, "negative storage size ", numel, " in ", file_);
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      std::string record = "data/" + key;
      CONVIRT_CHECK_VALUE(reader_.hasRecord(record), "record '", record, "' missing from ", file_,
                          " (truncated or damaged file)");
      auto [ptr, size] = reader_.getRecord(record);
      const size_t item = c10::elementSize(dtype);
      CONVIRT_CHECK_VALUE(static_cast<uint64_t>(numel) <= size / item, "record '", record, "' in ",
                          file_, " holds ", size, " bytes, fewer than the ", numel, " x ", item,
                          " bytes its tensor declares (truncated or damaged file)");
      size_t expected = static_cast<size_t>(numel) * item;
      CONVIRT_CHECK_VALUE(size >= expected, "record '", record, "' in ", file_, " holds ", size,
                          " bytes, expected ", expected, " (truncated file)");
      auto t = at::empty({numel}, at::TensorOptions().dtype(dtype));
      if (expected > 0) std::memcpy(t.data_ptr(), ptr.get(), expected);
      it = storages_.emplace(key, t).first;
    }
    auto o = make(PyObj::kStorage);
    o->tensor = it->second;
    return o;
  }

  static std::vector<int64_t> ints(const PyPtr& t) {
    std::vector<int64_t> v;
    for (auto& x : t->items) v.push_back(x->i);
    return v;
  }

  PyPtr reduce(const PyPtr& fn, const PyPtr& args) {
    const std::string& name = fn->s;
    if (name == "collections.OrderedDict" || name == "builtins.dict") return make(PyObj::kDict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      CONVIRT_CHECK_VALUE(args->items.size() >= 4 && args->items[0]->kind == PyObj::kStorage,
                          "malformed tensor in ", file_);
      auto o = make(PyObj::kTensor);
      o->tensor = args->items[0]->tensor.as_strided(ints(args->items[2]), ints(args->items[3]),
                                                    args->items[1]->i);
      return o;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag") {
      CONVIRT_CHECK_VALUE(!args->items.empty(), "malformed ", name, " in ", file_);
      return args->items[0];
    }
    auto o = make(PyObj::kOther);
    o->s = name;
    return o;
  }

  std::string file_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  const char* p_;
  const char* end_;
  std::vector<std::unique_ptr<PyObj>> arena_;
  std::vector<PyPtr> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, PyPtr> memo_;
  std::map<std::string, at::Tensor> storages_;
};

}  // namespace

// ---------------------------------------------------------------- state dicts
std::string LoadReport::summary() const {
  std::ostringstream os;
  os << "missing keys (" << missing.size() << "): " << join(missing) << "\n";
  os << "unexpected keys (" << unexpected.size() << "): " << join(unexpected) << "\n";
  if (!skipped.empty()) os << "skipped keys (" << skipped.size() << "): " << join(skipped) << "\n";
  if (!converted.empty())
    os << "converted keys (" << converted.size() << "): " << join(converted) << "\n";
  return os.str();
}

StateDict module_state_dict(const torch::nn::Module& module) {
  StateDict sd;
  for (const auto& p : module.named_parameters(true)) sd.insert(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(true)) sd.insert(b.key(), b.value().detach());
  return sd;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict) {
  LoadReport report;
  auto targets = module_state_dict(module);
  std::vector<std::string> mismatched;
  for (const auto& t : targets) {
    const at::Tensor* src = state.find(t.key());
    if (!src) {
      report.missing.push_back(t.key());
    } else if (src->sizes() != t.value().sizes()) {
      mismatched.push_back(t.key() + ": expected " + detail::shape_str(t.value().sizes()) +
                           ", got " + detail::shape_str(src->sizes()));
    }
  }
  for (const auto& s : state)
    if (!targets.contains(s.key())) report.unexpected.push_back(s.key());
  CONVIRT_CHECK_VALUE(mismatched.empty(), "shape mismatch for ", mismatched.size(),
                      " key(s): ", join(mismatched));
  CONVIRT_CHECK_VALUE(!strict || report.complete(),
                      "state dict does not match the module (strict):\n", report.summary());
  at::NoGradGuard no_grad;
  for (auto& t : targets) {
    if (const at::Tensor* src = state.find(t.key())) t.value().copy_(*src);
  }
  return report;
}

StateDict read_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open weight file '", path, "' for reading");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0)
    return read_torch_state_dict(path);
  return read_safetensors(path).tensors;
}

// ---------------------------------------------------------------- safetensors
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
  write_file_atomic(path, buf.data(), buf.size());
}

// ---------------------------------------------------------------- torch.save zip files
StateDict read_torch_state_dict(const std::string& path) {
  {
    std::ifstream in(path, std::ios::binary);
    CONVIRT_CHECK_VALUE(in.good(), "cannot open weight file '", path, "' for reading");
    char magic[4] = {0, 0, 0, 0};
    in.read(magic, 4);
    CONVIRT_CHECK_VALUE(
        in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0, "'", path,
        "' is not a torch.save zip archive (legacy pre-1.6 files must be re-saved with a "
        "newer torch.save; safetensors files are read with read_safetensors)");
  }
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    CONVIRT_CHECK_VALUE(false, "'", path,
                        "' is a damaged or truncated zip archive: ", e.what_without_backtrace());
  }
  CONVIRT_CHECK_VALUE(reader->hasRecord("data.pkl"), "'", path,
                      "' has no data.pkl record; not a torch.save file");
  auto [ptr, size] = reader->getRecord("data.pkl");
  Unpickler unpickler(path, *reader, static_cast<const char*>(ptr.get()), size);
  PyPtr root;
  try {
    root = unpickler.run();
  } catch (const c10::Error&) {
    throw;
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "'", path, "': cannot read tensor data: ", e.what());
  }
  CONVIRT_CHECK_VALUE(
      root->kind == PyObj::kDict, "'", path,
      "' does not hold a state dict (a dict of name -> tensor); save model.state_dict(), "
      "not the module");
  for (const auto& [k, v] : root->dict)
    if (k->kind == PyObj::kStr && k->s == "state_dict" && v->kind == PyObj::kDict) root = v;
  StateDict sd;
  for (const auto& [k, v] : root->dict) {
    CONVIRT_CHECK_VALUE(k->kind == PyObj::kStr, "'", path, "': state dict keys must be strings");
    CONVIRT_CHECK_VALUE(v->kind == PyObj::kTensor, "'", path, "': value of '", k->s,
                        "' is not a tensor",
                        v->kind == PyObj::kOther ? " (" + v->s + ")" : std::string());
    sd.insert(k->s, v->tensor);
  }
  return sd;
}

void write_torch_state_dict(const std::string& path, const StateDict& state) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& item : state)
    dict.insert(item.key(), item.value().detach().to(at::kCPU).contiguous());
  std::vector<char> bytes = torch::jit::pickle_save(dict);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace convirt::io
