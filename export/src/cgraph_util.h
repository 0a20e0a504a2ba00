// Thin RAII and error adapters over Graphviz's C API (cgraph, gvc). Graphviz
// return codes and messages become absl::Status here and nowhere else.
#ifndef CIRCUIT_EXPORT_SRC_CGRAPH_UTIL_H_
#define CIRCUIT_EXPORT_SRC_CGRAPH_UTIL_H_

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <memory>
#include <string>

namespace circuit::internal {

struct AgraphCloser {
  void operator()(Agraph_t* g) const {
    if (g != nullptr) agclose(g);
  }
};
using AgraphPtr = std::unique_ptr<Agraph_t, AgraphCloser>;

struct GvcCloser {
  void operator()(GVC_t* gvc) const {
    if (gvc != nullptr) gvFreeContext(gvc);
  }
};
using GvcPtr = std::unique_ptr<GVC_t, GvcCloser>;

// cgraph (2.42) takes char* for strings it only reads.
inline char* Mutable(const std::string& s) { return const_cast<char*>(s.c_str()); }
inline char* Mutable(const char* s) { return const_cast<char*>(s); }

// Sets attribute `name` of a graph, node or edge, declaring it (default "") if new.
inline void SetAttr(void* object, const char* name, const std::string& value) {
  agsafeset(object, Mutable(name), Mutable(value), Mutable(""));
}

// Collects Graphviz's error and warning messages while alive (instead of
// printing them to stderr). Not reentrant: Graphviz's error state is global.
class ScopedGraphvizErrors {
 public:
  ScopedGraphvizErrors();
  ~ScopedGraphvizErrors();
  ScopedGraphvizErrors(const ScopedGraphvizErrors&) = delete;
  ScopedGraphvizErrors& operator=(const ScopedGraphvizErrors&) = delete;
  // The messages so far, on one line; empty when none.
  std::string text() const;

 private:
  agusererrf previous_;
};

}  // namespace circuit::internal

#endif  // CIRCUIT_EXPORT_SRC_CGRAPH_UTIL_H_
