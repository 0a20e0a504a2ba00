// The writing half of torch_pickle.h: the exact opcode sequence Python's
// torch.save emits for an OrderedDict of tensors (protocol 2, no memo).
#include <cstdint>
#include <string>
#include <vector>

#include "io/torch_pickle.h"

namespace circuit::internal {
namespace {

void PutUint(std::string* out, uint64_t v, int n) {
  for (int b = 0; b < n; ++b) out->push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}
void PutString(std::string* out, const std::string& s) {
  out->push_back('X');
  PutUint(out, s.size(), 4);
  out->append(s);
}
void PutInt(std::string* out, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out->push_back('J');
    PutUint(out, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  } else {
    out->push_back(static_cast<char>(0x8a));  // LONG1, 8 bytes
    out->push_back(8);
    PutUint(out, static_cast<uint64_t>(v), 8);
  }
}
void PutIntTuple(std::string* out, const std::vector<int64_t>& values) {
  out->push_back('(');
  for (int64_t v : values) PutInt(out, v);
  out->push_back('t');
}
void PutGlobal(std::string* out, const std::string& module, const std::string& name) {
  out->push_back('c');
  out->append(module + "\n" + name + "\n");
}

}  // namespace

std::string WriteStateDictPickle(const std::vector<PickledTensor>& tensors) {
  std::string out = "\x80\x02";  // PROTO 2, as torch.save
  PutGlobal(&out, "collections", "OrderedDict");
  out += ")R";  // OrderedDict()
  out.push_back('(');
  for (const PickledTensor& t : tensors) {
    PutString(&out, t.name);
    PutGlobal(&out, "torch._utils", "_rebuild_tensor_v2");
    out += "((";  // args tuple, then the persistent id tuple
    PutString(&out, "storage");
    PutGlobal(&out, "torch", t.storage_type);
    PutString(&out, t.storage_key);
    PutString(&out, t.location);
    PutInt(&out, t.storage_numel);
    out += "tQ";  // persistent id -> storage
    PutInt(&out, t.offset);
    PutIntTuple(&out, t.sizes);
    PutIntTuple(&out, t.strides);
    out.push_back(static_cast<char>(0x89));  // requires_grad = False
    PutGlobal(&out, "collections", "OrderedDict");
    out += ")R";  // backward_hooks = OrderedDict()
    out += "tR";  // _rebuild_tensor_v2(*args)
  }
  out += "u.";  // SETITEMS, STOP
  return out;
}

}  // namespace circuit::internal
