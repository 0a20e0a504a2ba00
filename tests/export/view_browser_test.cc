// The viewer page in a real browser: headless Chromium loads it from file://
// with "#selftest", the page drives its own controls (view_selftest.js) and
// writes the results into the DOM, and this test reads Chromium's --dump-dom.
// Without Chromium the tests skip, except under CI=true, where they fail
// (scripts/bootstrap installs Debian's chromium).
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "absl/strings/str_replace.h"
#include "circuit/core/file_util.h"
#include "circuit/export/view.h"
#include "export/explained_circuit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::ExplainedSmallCircuit;
using ::circuit::testing::IsOk;
using ::circuit::testing::RunCommand;
using ::circuit::testing::RunResult;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::SyntheticCircuit;
using ::circuit::testing::TempDir;
using json = nlohmann::json;

// $CIRCUIT_CHROMIUM, else the first of chromium, chromium-browser,
// google-chrome on PATH; "" when there is none.
std::string FindChromium() {
  if (const char* env = std::getenv("CIRCUIT_CHROMIUM"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t end = std::min(dirs.find(':', start), dirs.size());
      const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
      std::error_code ec;
      if (end > start && std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
      start = end + 1;
    }
  }
  return "";
}

// What the page's self-test wrote, and the whole dumped DOM.
struct SelfTest {
  json result;
  std::string dom;
};

class ViewBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    if (!chromium_.empty()) return;
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") {
      FAIL() << "chromium not found (CI=true): install it with scripts/bootstrap, or set "
                "CIRCUIT_CHROMIUM to a Chromium program";
    }
    GTEST_SKIP() << "chromium not found: scripts/bootstrap installs it (the test fails under CI=true)";
  }

  // Writes `circuit`'s page, loads it in headless Chromium with #selftest and
  // returns what the self-test wrote into the DOM.
  SelfTest Run(const Circuit& circuit) {
    SelfTest out;
    absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(circuit, {/*d_head=*/2});
    EXPECT_THAT(g, IsOk());
    if (!g.ok()) return out;
    const std::string page = dir_.File("circuit.html");
    EXPECT_THAT(WriteCircuitView(circuit, *g, DotOptions{}, page), IsOk());
    TempDir profile;  // a fresh profile: nothing from earlier runs, nothing shared
    const RunResult r = RunCommand(
        "timeout 120 '" + chromium_ +
        "' --headless --no-sandbox --disable-gpu --disable-background-networking "
        "--disable-component-update --no-first-run --disable-sync --user-data-dir='" +
        profile.path() + "' --dump-dom 'file://" + page + "#selftest'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    out.dom = r.out;
    const std::string open = "<pre id=\"selftest-result\">";
    const size_t start = r.out.find(open);
    const size_t end = r.out.find("</pre>", start);
    if (start == std::string::npos || end == std::string::npos) {
      ADD_FAILURE() << "no self-test result in the dumped DOM (did the script run?):\n"
                    << r.out.substr(0, 2000) << "\n" << r.err.substr(0, 2000);
      return out;
    }
    // The DOM serialiser escapes &, < and > in text (and non-breaking spaces).
    const std::string text = absl::StrReplaceAll(
        r.out.substr(start + open.size(), end - start - open.size()),
        {{"&lt;", "<"}, {"&gt;", ">"}, {"&nbsp;", "\xC2\xA0"}, {"&amp;", "&"}});
    out.result = json::parse(text, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(out.result.is_discarded()) << text;
    return out;
  }

  // Every check passed and no error reached the page's collector.
  static void ExpectPassed(const SelfTest& t) {
    ASSERT_TRUE(t.result.is_object());
    EXPECT_EQ(t.result["errors"], json::array()) << t.result["errors"].dump(2);
    ASSERT_TRUE(t.result["checks"].is_array());
    EXPECT_GE(t.result["checks"].size(), 10u);
    for (const json& c : t.result["checks"]) {
      EXPECT_TRUE(c["ok"].get<bool>()) << c["name"] << ": " << c["detail"];
    }
    EXPECT_TRUE(t.result["ok"].get<bool>());
    EXPECT_NE(t.dom.find("data-selftest=\"pass\""), std::string::npos);
  }

  // Node groups in the dumped DOM, counted apart from the page's own report.
  static long NodeElements(const std::string& dom) {
    const std::regex node(R"re(<g id="n\d+" class="node[ "])re");
    return std::distance(std::sregex_iterator(dom.begin(), dom.end(), node), std::sregex_iterator());
  }

  std::string chromium_;
  TempDir dir_;
};

TEST_F(ViewBrowserTest, ExplainedCircuitShowsTheHoveredNodesCard) {
  const Circuit c = ExplainedSmallCircuit();
  const SelfTest t = Run(c);
  ExpectPassed(t);
  EXPECT_EQ(t.result["node_elements"], 17);
  EXPECT_EQ(NodeElements(t.dom), 17);
  // The most important node is row 16 (importance 0.1 * row): its card, its
  // top context with its own marked token, its promoted tokens.
  const json& hovered = t.result["hovered"];
  EXPECT_EQ(hovered["row"], 16);
  EXPECT_EQ(hovered["card_label"], NodeLabel(c.nodes[16].node));
  EXPECT_EQ(hovered["marked"], " q16");
  EXPECT_EQ(hovered["contexts"], 3);  // 2 top, 1 bottom
  EXPECT_EQ(hovered["chips"], 3);     // 2 promoted, 1 suppressed
  EXPECT_EQ(t.result["prompt"]["tokens"], 6);
  EXPECT_EQ(t.result["prompt"]["coloured"], 6);
}

TEST_F(ViewBrowserTest, CircuitWithoutExplanationsShowsPlainCards) {
  const Circuit c = SmallCircuit();
  const SelfTest t = Run(c);
  ExpectPassed(t);
  EXPECT_EQ(t.result["explained"], false);
  EXPECT_EQ(NodeElements(t.dom), 17);
  EXPECT_EQ(t.result["hovered"]["card_label"], NodeLabel(c.nodes[16].node));
  EXPECT_EQ(t.result["hovered"]["contexts"], 0);
}

TEST_F(ViewBrowserTest, FiveHundredExplainedNodes) {
  const Circuit c = SyntheticCircuit(/*explained=*/true);
  const SelfTest t = Run(c);
  ExpectPassed(t);
  EXPECT_EQ(t.result["node_elements"], 500);
  EXPECT_EQ(NodeElements(t.dom), 500);
  EXPECT_GT(t.result["threshold"]["shown"].get<int>(), 0);
}

}  // namespace
}  // namespace circuit
