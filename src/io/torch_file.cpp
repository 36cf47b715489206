// torch.save zip archives, read by a restricted unpickler that builds only dicts, lists, strings,
// numbers and tensors (never arbitrary Python globals), and written by LibTorch's pickler.
#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/io/torch_file.h>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

namespace convirt::io {
namespace {

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
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()), "weight file");
}

}  // namespace convirt::io
