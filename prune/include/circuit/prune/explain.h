// Node explanations (`circuit explain`): for every node of a circuit, what it
// responds to and what it writes, as plain data (core/explanation.h) that the
// circuit file stores (/explanations/) and `circuit view` shows.
//
// Two batched passes of the full model (no ablation), each recording every
// circuit node at once through taps: one over pretraining text (top and bottom
// activating contexts, histogram), one over the task's test prompts (mean at
// the answer position per class, per-token activations and, for q/k channels,
// the head's attention on a few prompts). Promoted/suppressed output tokens and
// driving input tokens come from the weights alone (direct paths). docs/explanations.md.
//
//   CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor text, ExplainWindows("corpus", config, 128, &words));
//   CIRCUIT_ASSIGN_OR_RETURN(CircuitExplanations e,
//       ExplainNodes(model, TokenTexts(tokenizer), nodes, text, words, task, ExplainOptions{}));
//   circuit.explanations = std::move(e);             // e.nodes[i] explains nodes[i]
#ifndef CIRCUIT_PRUNE_EXPLAIN_H_
#define CIRCUIT_PRUNE_EXPLAIN_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/explanation.h"
#include "circuit/core/model.h"
#include "circuit/core/nodes.h"
#include "circuit/core/task.h"
#include "circuit/core/tokenizer.h"

namespace circuit::prune {

struct ExplainOptions {
  int top = 8;               // contexts per side, and tokens per promoted/suppressed/input list
  int context_before = 19;   // tokens shown before the marked token (window = before + 1 + after)
  int context_after = 4;     // ... and after it
  int histogram_bins = 32;
  int prompts = 4;           // task prompts shown per token (prompt_activations, attention)
  int class_prompts = 256;   // test prompts averaged for class_means (at most)
  int batch_windows = 16;    // text windows per forward pass
  int batch_prompts = 64;    // task prompts per forward pass
};

// Decoded text of one token id (any bytes; ExplainNodes makes it valid UTF-8).
using TokenTextFn = std::function<std::string(int32_t)>;
// The tokenizer's bytes of each id; `tokenizer` must outlive the function.
TokenTextFn TokenTexts(const Tokenizer& tokenizer);

// Windows of pretraining text for the contexts: up to `max_windows` windows of
// n_ctx tokens spread evenly over the validation split of a corpus built by
// `circuit corpus build` (the text the bundled models' means come from).
// *words describes them. Errors: no such corpus (NotFound, naming the folder
// and how to build one), a manifest or val.bin that does not fit the model.
absl::StatusOr<torch::Tensor> ExplainWindows(const std::string& corpus_dir, const ModelConfig& config,
                                             int max_windows, std::string* words);

// Explains `nodes` (e.g. Circuit::nodes' node fields, any order) of `model`.
// `text`: (N, T) int64 windows, T <= n_ctx (ExplainWindows); `text_words` goes
// into CircuitExplanations::corpus. `task`: its test split gives the prompts
// and classes (the distinct correct answer tokens when there are at most 8,
// else "prompt" and "twin"); a task without test examples leaves the
// prompt-based fields empty. Runs under NoGradGuard on the model's device.
// Errors: a node outside the model, text not (N, T) or with ids outside the
// vocabulary, options out of range.
absl::StatusOr<CircuitExplanations> ExplainNodes(const Model& model, const TokenTextFn& token_text,
                                                 const std::vector<Node>& nodes,
                                                 const torch::Tensor& text,
                                                 const std::string& text_words,
                                                 const TaskData& task,
                                                 const ExplainOptions& options = {});

// `bytes` with every invalid UTF-8 sequence, and NUL, replaced by U+FFFD (files
// and the viewer's JSON need valid UTF-8; byte-level tokens may split a character).
std::string ValidUtf8(const std::string& bytes);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_EXPLAIN_H_
