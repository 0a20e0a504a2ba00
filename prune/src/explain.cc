// Node explanations: the pass over text (contexts, histograms), the pass over
// the task's prompts (class means, per-token activations, attention), and the
// weights' direct paths (explain_weights.cc), gathered per node.
#include "circuit/prune/explain.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/prune/mean_cache.h"
#include "explain_internal.h"

namespace circuit::prune {
namespace {

using internal::NodeRecorder;

constexpr size_t kMaxTokenClasses = 8;
constexpr int64_t kTextBytes = int64_t{256} << 20;  // recorded activations held at once

absl::Status CheckInputs(const ModelConfig& c, const std::vector<Node>& nodes, const torch::Tensor& text,
                         const ExplainOptions& o) {
  if (o.top < 1 || o.histogram_bins < 1 || o.context_before < 0 || o.context_after < 0 ||
      o.prompts < 0 || o.class_prompts < 0) {
    return absl::InvalidArgumentError(absl::StrCat("explain: options out of range (top ", o.top, ", bins ",
                                                   o.histogram_bins, ", prompts ", o.prompts, ")"));
  }
  for (const Node& n : nodes) {
    const bool final = n.location == NodeLocation::kFinalResid;
    if ((final ? n.layer != c.n_layer : n.layer < 0 || n.layer >= c.n_layer) || n.index < 0 ||
        n.index >= c.LocationWidth(n.location)) {
      return absl::InvalidArgumentError(
          absl::StrCat("explain: node ", NodeLabel(n), " is not in a model of ", c.n_layer, " layers"));
    }
  }
  if (!text.defined() || text.dim() != 2 || text.numel() == 0 || text.size(1) > c.n_ctx) {
    return absl::InvalidArgumentError("explain: text must be non-empty (N, T) windows with T <= n_ctx");
  }
  const int64_t lo = text.min().item<int64_t>(), hi = text.max().item<int64_t>();
  if (lo < 0 || hi >= c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("explain: token id ", lo < 0 ? lo : hi,
                                                   " outside the vocabulary of ", c.vocab_size));
  }
  return absl::OkStatus();
}

// Up to `top` contexts at the highest (largest) or lowest activations of one
// node, `values` (N * T) over windows (N, T). Positions closer than a third of
// a context to one already taken in the same window are skipped (one
// occurrence, not its neighbours), and so are exact zeros (AbsTopK dropped the
// channel there: they say nothing about the node).
std::vector<ActivatingContext> Contexts(const torch::Tensor& values, const torch::Tensor& windows,
                                        bool largest, const std::vector<std::string>& vocab,
                                        const ExplainOptions& o) {
  const int64_t T = windows.size(1);
  const int64_t spacing = std::max<int64_t>(1, (o.context_before + 1 + o.context_after) / 3);
  const int64_t k = std::min<int64_t>(values.numel(), int64_t{16} * o.top);
  const auto [best, where] = values.topk(k, 0, largest);
  const float* v = best.data_ptr<float>();
  const int64_t* at = where.data_ptr<int64_t>();
  const int64_t* tok = windows.data_ptr<int64_t>();
  std::vector<ActivatingContext> out;
  std::vector<int64_t> taken;
  for (int64_t r = 0; r < k && static_cast<int>(out.size()) < o.top; ++r) {
    if (v[r] == 0.0f) continue;
    const int64_t n = at[r] / T, t = at[r] % T;
    const bool near = std::any_of(taken.begin(), taken.end(), [&](int64_t p) {
      return p / T == n && std::abs(p % T - t) < spacing;
    });
    if (near) continue;
    taken.push_back(at[r]);
    ActivatingContext c;
    const int64_t from = std::max<int64_t>(0, t - o.context_before);
    const int64_t to = std::min<int64_t>(T, t + o.context_after + 1);
    for (int64_t j = from; j < to; ++j) c.tokens.push_back(vocab[tok[n * T + j]]);
    c.marked = static_cast<int32_t>(t - from);
    c.value = v[r];
    out.push_back(std::move(c));
  }
  return out;
}

// Equal-width bins from the smallest to the largest value (one unit wide when
// all are equal), the largest value counted in the last bin.
void Histogram(const torch::Tensor& values, int bins, NodeExplanation* e) {
  const float lo = values.min().item<float>();
  float hi = values.max().item<float>();
  if (!(hi > lo)) hi = lo + 1.0f;
  const torch::Tensor edges = torch::linspace(lo, hi, bins + 1, torch::kFloat64).to(torch::kFloat32);
  const torch::Tensor bin =
      ((values.to(torch::kFloat64) - lo) / (double(hi) - lo) * bins).floor().clamp(0, bins - 1).to(torch::kInt64);
  const torch::Tensor counts = torch::bincount(bin, {}, bins).to(torch::kInt64).contiguous();
  e->histogram_edges.assign(edges.data_ptr<float>(), edges.data_ptr<float>() + bins + 1);
  e->histogram_counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + bins);
}

// The classes of the prompts: their distinct correct tokens when few, else
// prompt vs twin (paired tasks) or a single class. Returns the class of each example.
std::vector<int> Classes(const std::vector<TaskExample>& examples, bool paired,
                         const std::vector<std::string>& vocab, std::vector<std::string>* names) {
  std::vector<int32_t> answers;
  for (const TaskExample& ex : examples) {
    if (std::find(answers.begin(), answers.end(), ex.correct) == answers.end()) answers.push_back(ex.correct);
  }
  std::vector<int> cls(examples.size(), 0);
  if (answers.size() <= kMaxTokenClasses) {
    for (int32_t a : answers) names->push_back(vocab[a]);
    for (size_t i = 0; i < examples.size(); ++i) {
      cls[i] = static_cast<int>(std::find(answers.begin(), answers.end(), examples[i].correct) - answers.begin());
    }
  } else if (paired) {
    *names = {"prompt", "twin"};
    for (size_t i = 0; i < examples.size(); ++i) cls[i] = static_cast<int>(i % 2);
  } else {
    *names = {"prompt"};
  }
  return cls;
}

// Heads (layer, head) of the q/k nodes, and the layers that hold them.
std::vector<int> AttentionLayers(const std::vector<Node>& nodes) {
  std::vector<int> layers;
  for (const Node& n : nodes) {
    if ((n.location == NodeLocation::kAttnQ || n.location == NodeLocation::kAttnK) &&
        std::find(layers.begin(), layers.end(), n.layer) == layers.end()) {
      layers.push_back(n.layer);
    }
  }
  return layers;
}

// The pass over the task's test prompts: class means at the answer position for
// every node; activations per token and attention on the first o.prompts prompts.
void ExplainOnPrompts(const Model& model, const std::vector<Node>& nodes, const TaskData& task,
                      const std::vector<std::string>& vocab, const ExplainOptions& o,
                      CircuitExplanations* out) {
  const std::vector<TaskExample> examples(
      task.test.begin(), task.test.begin() + std::min<size_t>(task.test.size(), o.class_prompts));
  if (examples.empty()) return;
  const std::vector<int> cls = Classes(examples, task.paired, vocab, &out->class_names);
  const int64_t n_nodes = static_cast<int64_t>(nodes.size());
  const int64_t shown = std::min<int64_t>(o.prompts, static_cast<int64_t>(examples.size()));
  for (int64_t p = 0; p < shown; ++p) {
    std::vector<std::string> words;
    for (int32_t id : examples[p].tokens) words.push_back(vocab[id]);
    out->prompts.push_back(std::move(words));
  }
  torch::Tensor sums = torch::zeros({n_nodes, static_cast<int64_t>(out->class_names.size())}, torch::kFloat64);
  std::vector<int64_t> count(out->class_names.size(), 0);
  NodeRecorder recorder(model, nodes, AttentionLayers(nodes));
  const int64_t step = std::max(1, o.batch_prompts);
  for (int64_t start = 0; start < static_cast<int64_t>(examples.size()); start += step) {
    const int64_t B = std::min<int64_t>(step, static_cast<int64_t>(examples.size()) - start);
    int64_t T = 0;
    for (int64_t b = 0; b < B; ++b) T = std::max<int64_t>(T, examples[start + b].tokens.size());
    // Right-padded with id 0: causal attention keeps the padding out of the real positions.
    torch::Tensor tokens = torch::zeros({B, T}, torch::kInt64);  // (B, T)
    torch::Tensor last = torch::empty({B}, torch::kInt64);       // (B) answer positions
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t>& ids = examples[start + b].tokens;
      std::copy(ids.begin(), ids.end(), tokens.data_ptr<int64_t>() + b * T);
      last.data_ptr<int64_t>()[b] = static_cast<int64_t>(ids.size()) - 1;
    }
    const torch::Tensor dev_tokens = tokens.to(model.device());
    model.ForwardAt(dev_tokens, last.to(model.device()), &recorder.taps());
    const torch::Tensor acts = recorder.Nodes();  // (B, T, n_nodes)
    const torch::Tensor at_answer = acts.index({torch::arange(B), last}).to(torch::kFloat64);  // (B, n)
    for (int64_t b = 0; b < B; ++b) {
      sums.select(1, cls[start + b]) += at_answer[b];
      ++count[cls[start + b]];
    }
    for (int64_t p = start; p < std::min(start + B, shown); ++p) {
      const int64_t L = static_cast<int64_t>(examples[p].tokens.size());
      const torch::Tensor row = acts[p - start].slice(0, 0, L).t().contiguous();  // (n, L)
      for (int64_t i = 0; i < n_nodes; ++i) {
        const float* v = row[i].data_ptr<float>();
        out->nodes[i].prompt_activations.emplace_back(v, v + L);
        const Node& n = nodes[i];
        if (n.location != NodeLocation::kAttnQ && n.location != NodeLocation::kAttnK) continue;
        out->nodes[i].attention.push_back(AttentionExample{
            static_cast<int32_t>(p),
            internal::AttentionFromLast(model, n.layer, n.index / model.config().d_head,
                                        recorder.Query(n.layer), recorder.Key(n.layer), p - start, L)});
      }
    }
  }
  for (size_t c = 0; c < count.size(); ++c) sums.select(1, c) /= std::max<int64_t>(1, count[c]);
  const torch::Tensor means = sums.to(torch::kFloat32).contiguous();
  for (int64_t i = 0; i < n_nodes; ++i) {
    const float* m = means[i].data_ptr<float>();
    out->nodes[i].class_means.assign(m, m + means.size(1));
  }
}

}  // namespace

TokenTextFn TokenTexts(const Tokenizer& tokenizer) {
  return [&tokenizer](int32_t id) { return tokenizer.TokenBytes(id); };
}

std::string ValidUtf8(const std::string& s) {
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    size_t len = c == 0 ? 0 : c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xC2);
    for (size_t j = 1; ok && j < len; ++j) ok = (b[i + j] & 0xC0) == 0x80;
    if (ok && len == 3) {
      const unsigned cp = ((c & 0x0Fu) << 12) | ((b[i + 1] & 0x3Fu) << 6);
      ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok && len == 4) {
      const unsigned cp = ((c & 0x07u) << 18) | ((b[i + 1] & 0x3Fu) << 12);
      ok = cp >= 0x10000 && cp <= 0x10FFFF;
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

absl::StatusOr<torch::Tensor> ExplainWindows(const std::string& corpus_dir, const ModelConfig& config,
                                             int max_windows, std::string* words) {
  std::error_code ec;
  if (!std::filesystem::is_directory(corpus_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("no corpus at ", corpus_dir,
                                            " (build one with `circuit corpus build --out ", corpus_dir,
                                            "`, or pass --corpus DIR)"));
  }
  return CorpusMeanWindows(corpus_dir, config.vocab_size, config.n_ctx, max_windows, words);
}

absl::StatusOr<CircuitExplanations> ExplainNodes(const Model& model, const TokenTextFn& token_text,
                                                 const std::vector<Node>& nodes, const torch::Tensor& text,
                                                 const std::string& text_words, const TaskData& task,
                                                 const ExplainOptions& o) {
  const ModelConfig& c = model.config();
  CIRCUIT_RETURN_IF_ERROR(CheckInputs(c, nodes, text, o));
  torch::NoGradGuard no_grad;
  std::vector<std::string> vocab(c.vocab_size);
  for (int32_t id = 0; id < c.vocab_size; ++id) vocab[id] = ValidUtf8(token_text(id));

  CircuitExplanations out;
  out.corpus = text_words;
  out.top = o.top;
  out.nodes.resize(nodes.size());
  if (nodes.empty()) return out;
  const torch::Tensor windows = text.to(torch::kCPU, torch::kInt64).contiguous();  // (N, T)
  // Nodes in chunks whose activations over the text fit in kTextBytes: one pass each.
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, kTextBytes / (4 * windows.numel())));
  for (size_t first = 0; first < nodes.size(); first += chunk) {
    const std::vector<Node> part(nodes.begin() + first, nodes.begin() + std::min(nodes.size(), first + chunk));
    const torch::Tensor acts = internal::RecordOverText(model, part, windows, o.batch_windows);  // (m, N*T)
    for (size_t j = 0; j < part.size(); ++j) {
      NodeExplanation& e = out.nodes[first + j];
      const torch::Tensor values = acts[static_cast<int64_t>(j)];
      e.top_contexts = Contexts(values, windows, /*largest=*/true, vocab, o);
      e.bottom_contexts = Contexts(values, windows, /*largest=*/false, vocab, o);
      Histogram(values, o.histogram_bins, &e);
      internal::FillOutputTokens(model, part[j], o.top, vocab, &e);
      internal::FillInputTokens(model, part[j], o.top, vocab, &e);
    }
  }
  ExplainOnPrompts(model, nodes, task, vocab, o, &out);
  return out;
}

}  // namespace circuit::prune
