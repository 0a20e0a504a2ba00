#include "circuit/sweep/report.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "circuit/core/arch.h"
#include "circuit/core/file_util.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "circuit/sweep/spec.h"

namespace circuit {
namespace {

// Whether a model file says it was trained dense; false when unreadable.
bool IsDense(const std::string& model_path) {
  absl::StatusOr<H5Reader> r = H5Reader::Open(model_path);
  if (!r.ok()) return false;
  absl::StatusOr<bool> has = r->HasAttribute("/training", "dense");
  if (!has.ok() || !*has) return false;
  absl::StatusOr<int64_t> dense = r->ReadIntAttribute("/training", "dense");
  return dense.ok() && *dense != 0;
}

// Text for SVG: model stems are file names and may hold &, < or >.
std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

// Mean over the audited units of {cpr, cmd, jaccard, control_ratio}, each over
// its finite values; empty when no unit was audited.
std::vector<double> AuditMeans(const std::vector<const UnitResult*>& units) {
  std::vector<double> sum(4, 0.0), n(4, 0.0);
  bool any = false;
  for (const UnitResult* u : units) {
    const double f[4] = {u->cpr, u->cmd, u->jaccard, u->control_ratio};
    for (int i = 0; i < 4; ++i) {
      if (!std::isfinite(f[i])) continue;
      sum[i] += f[i];
      n[i] += 1;
      any = true;
    }
  }
  if (!any) return {};
  for (int i = 0; i < 4; ++i) sum[i] = n[i] > 0 ? sum[i] / n[i] : kNoFigure;
  return sum;
}

double GeoMean(const std::vector<double>& xs) {
  if (xs.empty()) return 0;
  double log_sum = 0;
  for (double x : xs) log_sum += std::log(std::max(x, 1.0));  // an empty circuit counts as 1 edge
  return std::exp(log_sum / xs.size());
}

std::string Chart(const std::vector<ReportGroup>& groups) {
  // Series: one per (model, setting without the target), points (target, geomean);
  // named by "model (kind)" and the rest of the setting, shown on two legend lines.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, double>>> series;
  double x_min = 1e9, x_max = -1e9, y_min = 1e18, y_max = 0;
  for (const ReportGroup& g : groups) {
    if (g.geomean_edges <= 0) continue;
    const std::string kind = g.dense ? "dense" : "sparse";
    const std::string name = g.model == kind ? kind : absl::StrCat(g.model, " (", kind, ")");
    const std::string rest = g.setting.substr(g.setting.find(", ") + 2);
    series[{name, rest}].push_back({g.target_loss, g.geomean_edges});
    x_min = std::min(x_min, g.target_loss);
    x_max = std::max(x_max, g.target_loss);
    y_min = std::min(y_min, g.geomean_edges);
    y_max = std::max(y_max, g.geomean_edges);
  }
  const int W = 640, H = 400, L = 70, R = 220, T = 30, B = 50;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"%d\" y=\"18\" font-size=\"14\">Circuit size (geometric mean of "
      "edges over tasks) vs target loss</text>\n",
      W, H, L);
  if (series.empty()) return svg + "<text x=\"70\" y=\"200\">no finished units</text>\n</svg>\n";
  // Margins so that the end points sit off the axes.
  const double x_pad = x_max == x_min ? 0.05 : 0.08 * (x_max - x_min);
  x_min -= x_pad;
  x_max += x_pad;
  const double ly_min = std::log10(y_min) - 0.1, ly_max = std::log10(y_max) + 0.1;
  auto px = [&](double x) { return L + (x - x_min) / (x_max - x_min) * (W - L - R); };
  auto py = [&](double y) { return H - B - (std::log10(y) - ly_min) / (ly_max - ly_min) * (H - T - B); };
  absl::StrAppendFormat(&svg,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n",
                        L, H - B, W - R, H - B, L, T, L, H - B);
  absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\">target task loss (nats/prompt)</text>\n",
                        L + 60, H - 12);
  absl::StrAppendFormat(&svg,
                        "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\">edges (log)</text>\n",
                        H / 2 + 30, H / 2 + 30);
  // Ticks at 1, 2 and 5 times the powers of ten in range, with light grid lines.
  for (double e = std::floor(ly_min); e <= ly_max; e += 1) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double y = m * std::pow(10, e);
      if (std::log10(y) < ly_min || std::log10(y) > ly_max) continue;
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                            L, py(y), W - R, py(y), L - 6, py(y) + 4, y);
    }
  }
  std::set<double> ticks;
  for (const ReportGroup& g : groups) ticks.insert(g.target_loss);
  for (double t : ticks) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                          px(t), H - B + 16, t);
  }
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  int i = 0;
  for (auto& [label, points] : series) {
    std::sort(points.begin(), points.end());
    const char* colour = colours[i % 6];
    std::string path;
    for (const auto& [x, y] : points) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "" : " ", px(x), py(y));
      absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", px(x),
                            py(y), colour);
    }
    absl::StrAppendFormat(&svg,
                          "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                          path, colour);
    const int y = T + 36 * i;
    absl::StrAppendFormat(&svg, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>",
                          W - R + 14, y, colour);
    absl::StrAppendFormat(&svg,
                          "<text x=\"%d\" y=\"%d\">%s</text><text x=\"%d\" y=\"%d\" "
                          "font-size=\"10\" fill=\"#555\">%s</text>\n",
                          W - R + 32, y + 11, XmlEscape(label.first), W - R + 32, y + 25,
                          XmlEscape(label.second));
    ++i;
  }
  return svg + "</svg>\n";
}

}  // namespace

absl::StatusOr<SweepReport> BuildSweepReport(const std::string& sweep_dir) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<UnitResult> rows,
                           ResultsFile::Read(sweep_dir + "/results.h5"));
  // Circuit sizes come from extract-like units: every study records its circuit.
  // A model file changed in place leaves rows of its earlier weights: report
  // only the rows of each model's latest weights (the digest of its last row).
  std::map<std::string, std::string> latest_digest;
  for (const UnitResult& r : rows) latest_digest[r.unit.model] = r.unit.model_digest;
  std::map<std::string, ReportGroup> groups;
  std::map<std::string, std::map<std::string, std::vector<const UnitResult*>>> by_task, audited;
  for (const UnitResult& r : rows) {
    if (r.unit.study != "extract") continue;
    if (r.unit.model_digest != latest_digest[r.unit.model]) continue;
    const std::string setting = absl::StrFormat("target %g, %s, %s%s, %s", r.unit.target_loss,
                                                r.unit.ablation, r.unit.penalty,
                                                r.unit.penalty_coef > 0
                                                    ? absl::StrFormat(" %g", r.unit.penalty_coef)
                                                    : "",
                                                r.unit.method);
    const std::string key = FileStem(r.unit.model) + "|" + setting;
    ReportGroup& g = groups[key];
    if (g.model.empty()) {
      g.model = FileStem(r.unit.model);
      g.dense = IsDense(r.unit.model);
      absl::StatusOr<std::string> arch = ReadModelArch(r.unit.model);
      if (arch.ok()) g.arch = *arch;
      g.setting = setting;
      g.target_loss = r.unit.target_loss;
    }
    if (!r.ok) {
      ++g.failed;
      continue;
    }
    // Audited rows count whether or not they met the target (the audit says so).
    if (std::isfinite(r.cpr)) audited[key][r.unit.task].push_back(&r);
    if (!r.met_target) {
      ++g.not_met;
      continue;
    }
    by_task[key][r.unit.task].push_back(&r);
  }
  SweepReport report;
  report.csv =
      "model,dense,setting,task,edges,circuit_loss,units,cpr,cmd,jaccard,control_ratio,nodes,arch\n";
  for (auto& [key, g] : groups) {
    std::vector<double> per_task;
    for (const auto& [task, units] : by_task[key]) {
      double edges = 0, nodes = 0, loss = 0;
      for (const UnitResult* u : units) {
        edges += u->n_edges;
        nodes += u->n_nodes;
        loss += u->circuit_loss;
      }
      g.edges_by_task[task] = edges / units.size();
      g.nodes_by_task[task] = nodes / units.size();
      g.loss_by_task[task] = loss / units.size();
      per_task.push_back(g.edges_by_task[task]);
      const std::vector<double> audit = AuditMeans(units);
      std::string audit_csv;
      for (size_t i = 0; i < 4; ++i) {
        const double v = audit.empty() ? kNoFigure : audit[i];
        absl::StrAppend(&audit_csv, ",", std::isfinite(v) ? absl::StrFormat("%.4f", v) : "");
      }
      absl::StrAppendFormat(&report.csv, "%s,%d,\"%s\",%s,%.2f,%.5f,%d%s,%.2f,%s\n", g.model,
                            g.dense, g.setting, task, g.edges_by_task[task], g.loss_by_task[task],
                            units.size(), audit_csv, g.nodes_by_task[task], g.arch);
    }
    for (const auto& [task, units] : audited[key]) g.audit_by_task[task] = AuditMeans(units);
    g.geomean_edges = GeoMean(per_task);
    report.groups.push_back(g);
  }
  // Headline: per setting and dense model, its size over the sparse models' on the
  // tasks both solved (a task only one reached the target for would tilt the ratio).
  // sparse_size: setting -> task -> edges (or nodes), one per sparse GPT model.
  std::map<std::string, std::map<std::string, std::vector<double>>> sparse_edges, sparse_nodes;
  auto is_sparse = [](const ReportGroup& g) { return g.arch == kArchGpt && !g.dense; };
  for (const ReportGroup& g : report.groups) {
    if (!is_sparse(g)) continue;
    for (const auto& [task, edges] : g.edges_by_task) sparse_edges[g.setting][task].push_back(edges);
    for (const auto& [task, nodes] : g.nodes_by_task) sparse_nodes[g.setting][task].push_back(nodes);
  }
  // Its size over the sparse models' on the tasks both solved.
  auto ratio = [](const ReportGroup& g, const std::map<std::string, double>& own,
                  std::map<std::string, std::vector<double>>& sparse_by_task,
                  std::vector<DenseSparseRatio>* out) {
    std::vector<double> mine, sparse;
    for (const auto& [task, size] : own) {
      const std::vector<double>& s = sparse_by_task[task];
      if (s.empty()) continue;
      mine.push_back(size);
      sparse.push_back(GeoMean(s));
    }
    if (!mine.empty()) {
      out->push_back({g.model, GeoMean(mine) / GeoMean(sparse), static_cast<int>(mine.size())});
    }
  };
  for (const ReportGroup& g : report.groups) {
    if (g.arch == kArchBdh) {
      ratio(g, g.nodes_by_task, sparse_nodes[g.setting], &report.bdh_over_sparse[g.setting]);
    } else if (g.dense) {
      ratio(g, g.edges_by_task, sparse_edges[g.setting], &report.dense_over_sparse[g.setting]);
    }
  }
  for (auto* by_setting : {&report.dense_over_sparse, &report.bdh_over_sparse}) {
    for (auto it = by_setting->begin(); it != by_setting->end();) {
      if (it->second.empty()) {
        it = by_setting->erase(it);
        continue;
      }
      std::sort(it->second.begin(), it->second.end(),  // by model name
                [](const DenseSparseRatio& a, const DenseSparseRatio& b) {
                  return a.dense_model < b.dense_model;
                });
      ++it;
    }
  }
  std::string& t = report.table;
  absl::StrAppendFormat(&t, "%-18s %-6s %-40s %10s  %s\n", "model", "kind", "setting",
                        "geomean", "edges per task (circuit loss)");
  for (const ReportGroup& g : report.groups) {
    std::string tasks;
    for (const auto& [task, edges] : g.edges_by_task) {
      absl::StrAppendFormat(&tasks, "%s%s %.0f (%.3f)", tasks.empty() ? "" : ", ", task, edges,
                            g.loss_by_task.at(task));
    }
    if (g.not_met > 0) {
      absl::StrAppendFormat(&tasks, "%s%d target not met", tasks.empty() ? "" : "; ", g.not_met);
    }
    if (g.failed > 0) absl::StrAppendFormat(&tasks, "%s%d failed", tasks.empty() ? "" : "; ", g.failed);
    const char* kind = g.arch == kArchBdh ? "bdh" : g.dense ? "dense" : "sparse";
    absl::StrAppendFormat(&t, "%-18s %-6s %-40s %10.1f  %s\n", g.model, kind, g.setting,
                          g.geomean_edges, tasks);
  }
  for (const ReportGroup& g : report.groups) {
    for (const auto& [task, f] : g.audit_by_task) {
      absl::StrAppendFormat(&t, "audit %s %s, %s: CPR %.3f, CMD %.3f, Jaccard %.2f, control ratio %.1f\n",
                            g.model, g.setting, task, f[0], f[1], f[2], f[3]);
    }
  }
  for (const auto& [setting, ratios] : report.dense_over_sparse) {
    for (const DenseSparseRatio& r : ratios) {
      absl::StrAppendFormat(&t,
                            "dense/sparse circuit size at %s: %s %.2fx (%d task%s both solved)\n",
                            setting, r.dense_model, r.ratio, r.n_tasks, r.n_tasks == 1 ? "" : "s");
    }
  }
  for (const auto& [setting, ratios] : report.bdh_over_sparse) {
    for (const DenseSparseRatio& r : ratios) {
      absl::StrAppendFormat(&t,
                            "bdh/sparse circuit nodes at %s: %s %.2fx (%d task%s both solved; "
                            "BDH edges are defined otherwise, docs/bdh.md)\n",
                            setting, r.dense_model, r.ratio, r.n_tasks, r.n_tasks == 1 ? "" : "s");
    }
  }
  report.svg = Chart(report.groups);
  return report;
}

absl::Status WriteSweepReport(const SweepReport& report, const std::string& sweep_dir) {
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(sweep_dir + "/report.csv", report.csv));
  return WriteFileAtomically(sweep_dir + "/report.svg", report.svg);
}

}  // namespace circuit
