// The pickle part of a torch.save() checkpoint, for state dicts only. Torch-free.
//
// torch.save(state_dict) writes a zip archive: `<name>/data.pkl` (a pickle of
// an OrderedDict from key to tensor), one record `<name>/data/<key>` per
// storage, and `<name>/version`. libtorch 1.13's own unpickler cannot read
// Python's state-dict pickles (no SETITEM opcode, OrderedDict becomes None), so
// this file reads and writes that pickle itself; the zip container is handled
// by libtorch's caffe2::serialize::PyTorchStream{Reader,Writer} (release_io.cc).
//
// The reader is strict, like torch.load(weights_only=True): only the globals a
// state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter, torch.*Storage) are accepted; anything else
// is an error naming the global.
//
//   CIRCUIT_ASSIGN_OR_RETURN(std::vector<PickledTensor> ts, ParseStateDictPickle(bytes));
//   std::string pkl = WriteStateDictPickle(ts);   // what torch.save would write
#ifndef CIRCUIT_CORE_TORCH_PICKLE_H_
#define CIRCUIT_CORE_TORCH_PICKLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace circuit::internal {

// One entry of a pickled state dict: where its data lives and how to view it.
struct PickledTensor {
  std::string name;           // state-dict key, e.g. "transformer.wte.weight"
  std::string storage_key;    // record name under data/, e.g. "0"
  std::string storage_type;   // "FloatStorage", "BFloat16Storage", "HalfStorage", ...
  std::string location;       // "cpu", "cuda:0", ... (ignored on load: data goes to the CPU)
  int64_t storage_numel = 0;  // elements in the whole storage
  int64_t offset = 0;         // storage offset, in elements
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

// Bytes per element of a storage type, or 0 when the type is unknown.
int StorageElementSize(const std::string& storage_type);

// Parses the data.pkl of a torch.save()d dict of tensors, in the dict's order.
// Errors: not a pickle, truncated, unsupported opcode or global, a value that is
// not a tensor, a key that is not a string.
absl::StatusOr<std::vector<PickledTensor>> ParseStateDictPickle(absl::string_view bytes);

// The pickle (protocol 2) that Python's torch.save writes for an OrderedDict of
// tensors; readable by torch.load(weights_only=True).
std::string WriteStateDictPickle(const std::vector<PickledTensor>& tensors);

}  // namespace circuit::internal

#endif  // CIRCUIT_CORE_TORCH_PICKLE_H_
