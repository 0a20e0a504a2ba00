// What the translation units of the Python module share: the wrapped model,
// task and circuit, the one place where absl::Status becomes a Python
// exception, and progress callbacks that Ctrl-C interrupts. Private to
// python/ (circuit::python).
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
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"
#include "circuit/prune/progress.h"

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

// A circuit, and the d_head of its model when known (groups q/k/v channels by
// head in the diagram; 0: one group per attention layer).
struct PyCircuit {
  Circuit circuit;
  int d_head = 0;
  py::dict stats;    // ExtractStats of the run that made it; empty when read from a file
  std::string path;  // the file it was read from or last written to; "" for a fresh extraction
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

// A ProgressFn for the engine, called without the GIL: takes the GIL, checks
// for Ctrl-C and calls `callback(stage, fraction)` unless it is None; either
// may end the run with Interrupted.
prune::ProgressFn PythonProgress(const py::object& callback);

// Runs f() with the GIL released; an Interrupted from PythonProgress becomes
// the pending Python error (KeyboardInterrupt, or what the callback raised).
template <typename F>
auto WithoutGil(F&& f) -> decltype(f()) {
  py::gil_scoped_release release;
  try {
    return f();
  } catch (const Interrupted&) {
    py::gil_scoped_acquire gil;
    throw py::error_already_set();
  }
}

// A str from arbitrary bytes (a token may hold half a UTF-8 character): invalid
// sequences become U+FFFD.
py::str Text(const std::string& bytes);

// The circuit's explanations as Python data (docs/python.md), None when it has none.
py::object ExplanationsObject(const Circuit& circuit);

// "0.attn.q", "3.mlp.post_act", "final_resid": the tap name of a site.
std::string TapName(int site, int n_layer);

// Registers extract, Circuit and means (circuit_bindings.cc).
void BindCircuits(py::module_& m);
// Registers audit and explain (audit_bindings.cc).
void BindAudit(py::module_& m);

}  // namespace circuit::python

#endif  // CIRCUIT_PYTHON_BINDINGS_H_
