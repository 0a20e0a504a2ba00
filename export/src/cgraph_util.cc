#include "cgraph_util.h"

#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace circuit::internal {
namespace {

std::string* messages = nullptr;  // the active collector; Graphviz's error state is global

int Collect(char* message) {
  if (messages != nullptr && message != nullptr) messages->append(message);
  return 0;
}

}  // namespace

ScopedGraphvizErrors::ScopedGraphvizErrors() : previous_(agseterrf(Collect)) {
  messages = new std::string;
}

ScopedGraphvizErrors::~ScopedGraphvizErrors() {
  agseterrf(previous_);
  delete messages;
  messages = nullptr;
}

std::string ScopedGraphvizErrors::text() const {
  if (messages == nullptr) return "";
  std::string one_line = absl::StrReplaceAll(*messages, {{"\n", " "}});
  return std::string(absl::StripAsciiWhitespace(one_line));
}

}  // namespace circuit::internal
