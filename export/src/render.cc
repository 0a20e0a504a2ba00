// Renders DOT through gvc in process. gvContext() loads the layout and render
// plugins listed in Graphviz's installed config (Debian's graphviz package
// writes it with `dot -c` on install).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "cgraph_util.h"
#include "circuit/core/status.h"
#include "circuit/export/dot.h"

namespace circuit {
namespace {

absl::Status WriteAtomically(const std::string& path, const std::string& bytes) {
  static int counter = 0;
  const std::string temp = absl::StrCat(path, ".tmp-", getpid(), "-", counter++);
  {
    std::ofstream out(temp, std::ios::binary);
    if (!out) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot create file"));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temp.c_str());
      return absl::InternalError(absl::StrCat(path, ": write failed (disk full?)"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    return absl::InternalError(absl::StrCat(path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RenderCircuitData(const std::string& dot, const std::string& format) {
  if (format == "dot") return dot;
  if (format != "svg" && format != "png") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown diagram format '", format, "' (expected svg, png or dot)"));
  }
  internal::ScopedGraphvizErrors errors;
  internal::GvcPtr gvc(gvContext());
  if (gvc == nullptr) return absl::InternalError("graphviz: gvContext failed: " + errors.text());
  internal::AgraphPtr g(agmemread(dot.c_str()));
  if (g == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("DOT does not parse: ", errors.text()));
  }
  if (gvLayout(gvc.get(), g.get(), "dot") != 0) {
    return absl::InternalError(absl::StrCat(
        "graphviz: dot layout failed (are Graphviz's plugins configured? try `dot -c`): ",
        errors.text()));
  }
  char* data = nullptr;
  unsigned int length = 0;
  const int rc = gvRenderData(gvc.get(), g.get(), format.c_str(), &data, &length);
  std::string bytes;
  if (rc == 0 && data != nullptr) bytes.assign(data, length);
  if (data != nullptr) gvFreeRenderData(data);
  gvFreeLayout(gvc.get(), g.get());
  if (rc != 0 || bytes.empty()) {
    return absl::InternalError(absl::StrCat("graphviz: rendering ", format,
                                            " failed (is the renderer plugin installed and "
                                            "configured? try `dot -c`): ",
                                            errors.text()));
  }
  return bytes;
}

absl::Status RenderCircuit(const std::string& dot, const std::string& format,
                           const std::string& out_path) {
  absl::StatusOr<std::string> bytes = RenderCircuitData(dot, format);
  if (!bytes.ok()) return Annotate(bytes.status(), out_path);
  return WriteAtomically(out_path, *bytes);
}

}  // namespace circuit
