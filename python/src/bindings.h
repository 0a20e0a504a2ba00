// What the two translation units of the Python module share: the wrapped
// model, the wrapped task, and the one place where absl::Status becomes a
// Python exception. Private to python/ (circuit::python).
#ifndef CIRCUIT_PYTHON_BINDINGS_H_
#define CIRCUIT_PYTHON_BINDINGS_H_

#include <torch/csrc/autograd/python_variable.h>  // THPVariable_Check
#include <torch/csrc/utils/pybind.h>  // pybind11 and the torch.Tensor <-> at::Tensor caster

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/task.h"

namespace circuit::python {

namespace py = pybind11;

// A loaded checkpoint. Shared, so that tasks and circuits built from a model
// keep it alive however Python drops its references.
struct PyModel {
  std::shared_ptr<ModelFile> file;
  const Model& model() const { return file->model; }
};

// A built task: its splits and the options they were drawn with (recorded in
// circuits, so `circuit ablate` rebuilds the same splits).
struct PyTask {
  TaskData data;
  TaskOptions options;
};

// User errors (InvalidArgument, NotFound, OutOfRange, FailedPrecondition,
// AlreadyExists) raise ValueError; the rest RuntimeError. The message is the
// Status message, unchanged: the one line the CLI prints.
[[noreturn]] void Raise(const absl::Status& status);
inline void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}
template <typename T>
T ValueOrThrow(absl::StatusOr<T> value) {
  if (!value.ok()) Raise(value.status());
  return *std::move(value);
}

// Raised out of a progress callback when Python has a pending signal (Ctrl-C)
// or the callback itself raised; carries the Python error back to the caller.
struct Interrupted {};

// "0.attn.q", "3.mlp.post_act", "final_resid": the tap name of a site.
std::string TapName(int site, int n_layer);

// Registers extract, Circuit and means (circuit_bindings.cc).
void BindCircuits(py::module_& m);

}  // namespace circuit::python

#endif  // CIRCUIT_PYTHON_BINDINGS_H_
