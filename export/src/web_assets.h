// The viewer's page files (export/web/), compiled in at build time by
// export/cmake/embed_files.cmake into web_assets.cc in the build tree.
#ifndef CIRCUIT_EXPORT_SRC_WEB_ASSETS_H_
#define CIRCUIT_EXPORT_SRC_WEB_ASSETS_H_

#include <string_view>

namespace circuit::internal {

extern const std::string_view kViewHtml;  // web/view.html: the page, with @MARKERS@
extern const std::string_view kViewCss;   // web/view.css
extern const std::string_view kViewJs;    // web/view.js
extern const std::string_view kViewSelfTestJs;  // web/view_selftest.js (#selftest)

}  // namespace circuit::internal

#endif  // CIRCUIT_EXPORT_SRC_WEB_ASSETS_H_
