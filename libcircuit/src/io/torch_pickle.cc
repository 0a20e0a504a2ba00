// A small pickle machine that understands exactly what torch.save writes for a
// state dict (protocol 2, plus the protocol-4 opcodes newer Pythons may emit).
// The writer is in torch_pickle_writer.cc.
#include "io/torch_pickle.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace circuit::internal {
namespace {

// Values live in the Machine's arena and point at each other with plain
// pointers: freeing is one flat loop, however deep the nesting or even cyclic
// (a list that APPENDs itself through the memo), never a recursive destructor.
struct Value;
using ValuePtr = Value*;

// A state dict nests a few levels (dict -> tensor -> size tuple); Python's own
// unpickler stops near 1000. Deeper input is hostile, not a checkpoint.
constexpr int kMaxDepth = 100;
// Objects one pickle may create (a release state dict needs a few thousand).
constexpr size_t kMaxValues = size_t{1} << 20;

struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor
  };
  Kind kind = Kind::kNone;
  int depth = 1;  // 1 + the deepest item, for collections
  int64_t i = 0;
  double f = 0.0;
  std::string s;                                       // string, or "module name" of a global
  std::vector<ValuePtr> items;                         // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  PickledTensor tensor;                                // storage fields / tensor view
};

const char* KindName(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kTuple:
      return "tuple";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kGlobal:
      return "global";
    case Value::Kind::kStorage:
      return "storage";
    case Value::Kind::kTensor:
      return "tensor";
  }
  return "?";
}

bool IsAllowedGlobal(const std::string& g) {
  if (g == "collections OrderedDict" || g == "torch._utils _rebuild_tensor_v2" ||
      g == "torch._utils _rebuild_parameter" || g == "torch._utils _rebuild_parameter_with_state") {
    return true;
  }
  const std::string prefix = "torch ", suffix = "Storage";
  return g.size() > prefix.size() + suffix.size() && g.compare(0, prefix.size(), prefix) == 0 &&
         g.compare(g.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class Machine {
 public:
  explicit Machine(absl::string_view bytes) : data_(bytes) {}

  absl::StatusOr<ValuePtr> Run();

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("data.pkl: ", what, " (at byte ", op_pos_, ")"));
  }
  bool Need(size_t n) const { return pos_ + n <= data_.size(); }
  uint64_t ReadUint(int n) {  // little-endian
    uint64_t v = 0;
    for (int b = 0; b < n; ++b) v |= uint64_t{static_cast<uint8_t>(data_[pos_ + b])} << (8 * b);
    pos_ += n;
    return v;
  }
  absl::StatusOr<ValuePtr> Pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Error("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<std::vector<ValuePtr>> PopMark() {
    if (marks_.empty()) return Error("no MARK before a collection opcode");
    std::vector<ValuePtr> items(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  // A new value owned by the arena (Run() stops before kMaxValues).
  ValuePtr Make(Value::Kind kind) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  // Raises v's depth for the items in [first, end) that were just added to it;
  // false when it is now too deep. Incremental, so appends stay linear.
  static bool Nest(Value* v, size_t first = 0) {
    for (size_t k = first; k < v->items.size(); ++k) {
      v->depth = std::max(v->depth, v->items[k]->depth + 1);
    }
    return v->depth <= kMaxDepth;
  }
  absl::Status Reduce(const ValuePtr& callable, const ValuePtr& args);
  absl::Status SetItems(const ValuePtr& dict, const std::vector<ValuePtr>& kv);

  absl::string_view data_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::vector<std::unique_ptr<Value>> arena_;  // owns every value above
};

absl::StatusOr<std::vector<int64_t>> IntTuple(const ValuePtr& v, const char* what) {
  if (v->kind != Value::Kind::kTuple) {
    return absl::InvalidArgumentError(absl::StrCat("data.pkl: tensor ", what, " is not a tuple"));
  }
  std::vector<int64_t> out;
  for (const ValuePtr& e : v->items) {
    if (e->kind != Value::Kind::kInt || e->i < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.pkl: tensor ", what, " has a bad entry"));
    }
    out.push_back(e->i);
  }
  return out;
}

absl::Status Machine::Reduce(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Value::Kind::kGlobal || args->kind != Value::Kind::kTuple) {
    return Error("REDUCE needs a global and an argument tuple");
  }
  const std::vector<ValuePtr>& a = args->items;
  const std::string& g = callable->s;
  if (g == "collections OrderedDict") {
    if (!a.empty()) return Error("OrderedDict with constructor arguments");
    stack_.push_back(Make(Value::Kind::kDict));
    return absl::OkStatus();
  }
  if (g == "torch._utils _rebuild_tensor_v2") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() < 4 || a[0]->kind != Value::Kind::kStorage || a[1]->kind != Value::Kind::kInt) {
      return Error("bad arguments to _rebuild_tensor_v2");
    }
    ValuePtr t = Make(Value::Kind::kTensor);
    t->tensor = a[0]->tensor;
    t->tensor.offset = a[1]->i;
    auto sizes = IntTuple(a[2], "size");
    if (!sizes.ok()) return sizes.status();
    auto strides = IntTuple(a[3], "stride");
    if (!strides.ok()) return strides.status();
    if (sizes->size() != strides->size()) return Error("tensor size and stride differ in length");
    t->tensor.sizes = std::move(*sizes);
    t->tensor.strides = std::move(*strides);
    stack_.push_back(std::move(t));
    return absl::OkStatus();
  }
  if (g == "torch._utils _rebuild_parameter" || g == "torch._utils _rebuild_parameter_with_state") {
    if (a.empty() || a[0]->kind != Value::Kind::kTensor) return Error("bad arguments to " + g);
    stack_.push_back(a[0]);
    return absl::OkStatus();
  }
  return Error("cannot call '" + g + "'");
}

absl::Status Machine::SetItems(const ValuePtr& dict, const std::vector<ValuePtr>& kv) {
  if (dict->kind != Value::Kind::kDict) return Error("SETITEM on a non-dict");
  if (kv.size() % 2 != 0) return Error("odd number of dict items");
  for (size_t i = 0; i < kv.size(); i += 2) {
    dict->entries.emplace_back(kv[i], kv[i + 1]);
    dict->depth = std::max({dict->depth, kv[i]->depth + 1, kv[i + 1]->depth + 1});
  }
  if (dict->depth > kMaxDepth) return Error("nested too deeply");
  return absl::OkStatus();
}

absl::StatusOr<ValuePtr> Machine::Run() {
  using K = Value::Kind;
#define CIRCUIT_NEED(n) \
  if (!Need(n)) return Error("truncated pickle")
#define CIRCUIT_POP(var)                        \
  auto var##_or = Pop();                        \
  if (!var##_or.ok()) return var##_or.status(); \
  ValuePtr var = std::move(*var##_or)
  while (true) {
    op_pos_ = pos_;
    // Each opcode makes at most one value.
    if (arena_.size() >= kMaxValues) return Error(absl::StrCat("more than ", kMaxValues, " objects"));
    CIRCUIT_NEED(1);
    const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
    switch (op) {
      case 0x80:
        CIRCUIT_NEED(1);
        pos_ += 1;
        break;  // PROTO
      case 0x95:
        CIRCUIT_NEED(8);
        pos_ += 8;
        break;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '.': {  // STOP
        CIRCUIT_POP(result);
        return result;
      }
      case 'N':
        stack_.push_back(Make(K::kNone));
        break;
      case 0x88:
      case 0x89: {
        ValuePtr v = Make(K::kBool);
        v->i = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J':
      case 'K':
      case 'M': {
        const int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        CIRCUIT_NEED(n);
        ValuePtr v = Make(K::kInt);
        const uint64_t u = ReadUint(n);
        v->i = n == 4 ? static_cast<int32_t>(u) : static_cast<int64_t>(u);
        stack_.push_back(v);
        break;
      }
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        CIRCUIT_NEED(1);
        const int n = static_cast<uint8_t>(data_[pos_++]);
        if (n > 8) return Error("integer too large");
        CIRCUIT_NEED(n);
        uint64_t u = ReadUint(n);
        if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);
        ValuePtr v = Make(K::kInt);
        v->i = static_cast<int64_t>(u);
        stack_.push_back(v);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        CIRCUIT_NEED(8);
        uint64_t u = 0;
        for (int b = 0; b < 8; ++b) u = (u << 8) | static_cast<uint8_t>(data_[pos_ + b]);
        pos_ += 8;
        ValuePtr v = Make(K::kFloat);
        std::memcpy(&v->f, &u, sizeof(u));
        stack_.push_back(v);
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const int n = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
        CIRCUIT_NEED(n);
        const uint64_t len = ReadUint(n);
        if (len > data_.size() - pos_) return Error("truncated pickle");
        ValuePtr v = Make(K::kString);
        v->s = std::string(data_.substr(pos_, len));
        pos_ += len;
        stack_.push_back(v);
        break;
      }
      case ')':
        stack_.push_back(Make(K::kTuple));
        break;
      case ']':
        stack_.push_back(Make(K::kList));
        break;
      case '}':
        stack_.push_back(Make(K::kDict));
        break;
      case 't':
      case 'l': {
        auto items = PopMark();
        if (!items.ok()) return items.status();
        ValuePtr v = Make(op == 't' ? K::kTuple : K::kList);
        v->items = std::move(*items);
        if (!Nest(v)) return Error("nested too deeply");
        stack_.push_back(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        ValuePtr v = Make(K::kTuple);
        for (int n = op - 0x84; n > 0; --n) {
          CIRCUIT_POP(e);
          v->items.insert(v->items.begin(), e);
        }
        if (!Nest(v)) return Error("nested too deeply");
        stack_.push_back(v);
        break;
      }
      case 'a': {
        CIRCUIT_POP(e);
        if (stack_.empty() || stack_.back()->kind != K::kList) return Error("APPEND to a non-list");
        stack_.back()->items.push_back(e);
        if (!Nest(stack_.back(), stack_.back()->items.size() - 1)) return Error("nested too deeply");
        break;
      }
      case 'e': {
        auto items = PopMark();
        if (!items.ok()) return items.status();
        if (stack_.empty() || stack_.back()->kind != K::kList)
          return Error("APPENDS to a non-list");
        const size_t first = stack_.back()->items.size();
        for (ValuePtr& e : *items) stack_.back()->items.push_back(std::move(e));
        if (!Nest(stack_.back(), first)) return Error("nested too deeply");
        break;
      }
      case 's': {
        CIRCUIT_POP(value);
        CIRCUIT_POP(key);
        if (stack_.empty()) return Error("SETITEM without a dict");
        if (absl::Status s = SetItems(stack_.back(), {key, value}); !s.ok()) return s;
        break;
      }
      case 'u':
      case 'd': {
        auto items = PopMark();
        if (!items.ok()) return items.status();
        if (op == 'd') stack_.push_back(Make(K::kDict));
        if (stack_.empty()) return Error("SETITEMS without a dict");
        if (absl::Status s = SetItems(stack_.back(), *items); !s.ok()) return s;
        break;
      }
      case 'c':
      case 0x93: {  // GLOBAL "module\nname\n", STACK_GLOBAL
        std::string module, name;
        if (op == 'c') {
          for (std::string* part : {&module, &name}) {
            const size_t end = data_.find('\n', pos_);
            if (end == absl::string_view::npos) return Error("truncated pickle");
            *part = std::string(data_.substr(pos_, end - pos_));
            pos_ = end + 1;
          }
        } else {
          CIRCUIT_POP(n);
          CIRCUIT_POP(m);
          if (m->kind != K::kString || n->kind != K::kString) return Error("bad STACK_GLOBAL");
          module = m->s;
          name = n->s;
        }
        ValuePtr v = Make(K::kGlobal);
        v->s = module + " " + name;
        if (!IsAllowedGlobal(v->s)) {
          return Error("'" + module + "." + name + "' is not allowed in a state dict");
        }
        stack_.push_back(v);
        break;
      }
      case 'R': {
        CIRCUIT_POP(args);
        CIRCUIT_POP(callable);
        if (absl::Status s = Reduce(callable, args); !s.ok()) return s;
        break;
      }
      case 'b': {  // BUILD: OrderedDict._metadata and tensor state carry nothing we need
        CIRCUIT_POP(state);
        if (stack_.empty()) return Error("BUILD without an object");
        const K k = stack_.back()->kind;
        if (k != K::kDict && k != K::kTensor)
          return Error("BUILD on a " + std::string(KindName(k)));
        break;
      }
      case 'Q': {  // BINPERSID: ('storage', torch.XStorage, key, location, numel)
        CIRCUIT_POP(pid);
        const auto& p = pid->items;
        if (pid->kind != K::kTuple || p.size() != 5 || p[0]->kind != K::kString ||
            p[0]->s != "storage" || p[1]->kind != K::kGlobal || p[2]->kind != K::kString ||
            p[3]->kind != K::kString || p[4]->kind != K::kInt || p[4]->i < 0) {
          return Error("unsupported persistent id (not a tensor storage)");
        }
        ValuePtr v = Make(K::kStorage);
        v->tensor.storage_type = p[1]->s.substr(p[1]->s.find(' ') + 1);
        v->tensor.storage_key = p[2]->s;
        v->tensor.location = p[3]->s;
        v->tensor.storage_numel = p[4]->i;
        stack_.push_back(v);
        break;
      }
      case 'q':
      case 'r':
      case 0x94: {  // BINPUT, LONG_BINPUT, MEMOIZE
        uint64_t index = memo_.size();
        if (op != 0x94) {
          const int n = op == 'q' ? 1 : 4;
          CIRCUIT_NEED(n);
          index = ReadUint(n);
        }
        if (stack_.empty()) return Error("memo of an empty stack");
        memo_[index] = stack_.back();
        break;
      }
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        const int n = op == 'h' ? 1 : 4;
        CIRCUIT_NEED(n);
        auto it = memo_.find(ReadUint(n));
        if (it == memo_.end()) return Error("memo entry not found");
        stack_.push_back(it->second);
        break;
      }
      default:
        return Error(absl::StrCat("unsupported pickle opcode 0x", absl::Hex(op)));
    }
  }
#undef CIRCUIT_NEED
#undef CIRCUIT_POP
}

}  // namespace

int StorageElementSize(const std::string& t) {
  if (t == "FloatStorage" || t == "IntStorage") return 4;
  if (t == "DoubleStorage" || t == "LongStorage") return 8;
  if (t == "HalfStorage" || t == "BFloat16Storage" || t == "ShortStorage") return 2;
  if (t == "ByteStorage" || t == "CharStorage" || t == "BoolStorage") return 1;
  return 0;
}

absl::StatusOr<std::vector<PickledTensor>> ParseStateDictPickle(absl::string_view bytes) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != 0x80) {
    return absl::InvalidArgumentError("data.pkl: not a pickle (no protocol header)");
  }
  Machine machine(bytes);
  absl::StatusOr<ValuePtr> root = machine.Run();
  if (!root.ok()) return root.status();
  if ((*root)->kind != Value::Kind::kDict) {
    return absl::InvalidArgumentError(absl::StrCat("data.pkl: holds a ", KindName((*root)->kind),
                                                   ", not a state dict (dict of tensors)"));
  }
  std::vector<PickledTensor> out;
  for (const auto& [key, value] : (*root)->entries) {
    if (key->kind != Value::Kind::kString) {
      return absl::InvalidArgumentError("data.pkl: a state-dict key is not a string");
    }
    if (value->kind != Value::Kind::kTensor) {
      return absl::InvalidArgumentError(absl::StrCat("data.pkl: entry '", key->s, "' is a ",
                                                     KindName(value->kind), ", not a tensor"));
    }
    out.push_back(value->tensor);
    out.back().name = key->s;
  }
  return out;
}

}  // namespace circuit::internal
