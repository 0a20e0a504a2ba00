// Assembles the viewer page: the template (web/view.html) with the style, the
// script, the Graphviz SVG of the circuit and the JSON data put in at its
// @MARKERS@. The SVG is the one `circuit draw` renders, with element ids
// (nodes "n<row>", edges "e<src>_<dst>") that the script binds to the data.
#include "circuit/export/view.h"

#include <map>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "circuit/core/file_util.h"
#include "circuit/core/status.h"
#include "web_assets.h"

namespace circuit {
namespace {

std::string EscapeHtml(const std::string& text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// `text` without every span from `open` to the next `close` (inclusive).
std::string RemoveSpans(const std::string& text, std::string_view open, std::string_view close) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (size_t start; (start = text.find(open, at)) != std::string::npos;) {
    const size_t end = text.find(close, start + open.size());
    if (end == std::string::npos) break;
    out.append(text, at, start - at);
    at = end + close.size();
  }
  out.append(text, at, std::string::npos);
  return out;
}

// Graphviz's SVG file, as an element to put inline: without the XML prolog and
// doctype, sized by the page's style instead of in points, and without the
// comments and <title>s (DOT names, which browsers would show as tooltips over
// the cards; a tenth of the SVG's size).
absl::StatusOr<std::string> InlineSvg(const std::string& file) {
  const size_t start = file.find("<svg");
  if (start == std::string::npos) return absl::InternalError("graphviz: SVG without <svg>");
  std::string svg = RemoveSpans(RemoveSpans(file.substr(start), "<!--", "-->"), "<title>", "</title>");
  const size_t open_end = svg.find('>');
  std::string open = svg.substr(0, open_end);
  for (const char* attribute : {" width=\"", " height=\""}) {
    const size_t at = open.find(attribute);
    if (at == std::string::npos) continue;
    const size_t end = open.find('"', at + std::string_view(attribute).size());
    open.erase(at, end + 1 - at);
  }
  return absl::StrCat(open, " id=\"graph-svg\"", svg.substr(open_end));
}

// `page` with each @NAME@ replaced by values[NAME], in one pass over the
// template (a value that happens to contain a marker is left as it is).
absl::StatusOr<std::string> Fill(std::string_view page,
                                 const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(page.size());
  int filled = 0;
  size_t at = 0;
  while (at < page.size()) {
    const size_t marker = page.find('@', at);
    if (marker == std::string_view::npos) break;
    const size_t end = page.find('@', marker + 1);
    auto it = end == std::string_view::npos
                  ? values.end()
                  : values.find(std::string(page.substr(marker + 1, end - marker - 1)));
    if (it == values.end()) {
      out.append(page.substr(at, marker + 1 - at));
      at = marker + 1;
      continue;
    }
    out.append(page.substr(at, marker - at));
    out.append(it->second);
    ++filled;
    at = end + 1;
  }
  out.append(page.substr(std::min(at, page.size())));
  if (filled < static_cast<int>(values.size())) {
    return absl::InternalError("viewer template: a marker is missing from web/view.html");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> CircuitViewHtml(const Circuit& circuit,
                                            const graph::CircuitGraph& graph,
                                            const DotOptions& options) {
  const CircuitExplanations& ex = circuit.explanations;
  if (ex.present() && ex.nodes.size() != circuit.nodes.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("explanations: %d node explanations for %d circuit nodes",
                        ex.nodes.size(), circuit.nodes.size()));
  }
  DotOptions dot_options = options;
  dot_options.tooltips = false;
  CIRCUIT_ASSIGN_OR_RETURN(std::string dot, CircuitToDot(graph, dot_options));
  CIRCUIT_ASSIGN_OR_RETURN(std::string svg, RenderCircuitData(dot, "svg"));
  CIRCUIT_ASSIGN_OR_RETURN(std::string inline_svg, InlineSvg(svg));
  // In a <script type="application/json"> block only "</script" could end the
  // data early; JSON has '<' only inside strings, where \u003c means the same.
  const std::string data =
      absl::StrReplaceAll(CircuitViewData(circuit, graph, options), {{"<", "\\u003c"}});
  const std::string title = options.title.empty() ? circuit.task : options.title;
  return Fill(internal::kViewHtml, {{"TITLE", EscapeHtml(title)},
                                    {"STYLE", std::string(internal::kViewCss)},
                                    {"SVG", inline_svg},
                                    {"DATA", data},
                                    {"SELFTEST", std::string(internal::kViewSelfTestJs)},
                                    {"SCRIPT", std::string(internal::kViewJs)}});
}

absl::Status WriteCircuitView(const Circuit& circuit, const graph::CircuitGraph& graph,
                              const DotOptions& options, const std::string& out_path) {
  absl::StatusOr<std::string> html = CircuitViewHtml(circuit, graph, options);
  if (!html.ok()) return Annotate(html.status(), out_path);
  return WriteFileAtomically(out_path, *html);
}

}  // namespace circuit
