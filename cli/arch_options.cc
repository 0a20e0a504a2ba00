#include "arch_options.h"

#include <tuple>

#include "absl/strings/str_cat.h"
#include "circuit/core/config.h"

namespace circuit::cli {

void AddArchOptions(ArgParser& parser, ArchOptions* o) {
  const BdhConfig& b = o->bdh;
  parser.Option("arch",
                absl::StrCat("architecture: gpt (the weight-sparse transformer) or bdh (Pathway's "
                             "Dragon Hatchling, docs/bdh.md; its shape defaults: --layers ",
                             b.n_layer, " --d-model ", b.d_model, " --heads ", b.n_head,
                             " --neurons ", b.n_neuron, " --n-ctx ", b.n_ctx, ")"),
                &o->arch);
  parser.Option("neurons", "bdh: neurons per head (N, even)", &o->bdh.n_neuron);
  parser.Option("dropout", "bdh: dropout on the gated neurons in training", &o->bdh.dropout);
}

std::string RejectGiven(const ArgParser& parser, std::initializer_list<const char*> names,
                        const std::string& what) {
  for (const char* name : names) {
    if (parser.Given(name)) return absl::StrCat("--", name, " does not apply to ", what);
  }
  return "";
}

std::string ResolveArch(const ArgParser& parser, const ModelConfig& gpt, ArchOptions* o) {
  if (o->arch == kArchGpt) {
    return RejectGiven(parser, {"neurons", "dropout"}, "--arch gpt (BDH options)");
  }
  if (o->arch != kArchBdh) return "--arch must be gpt or bdh, got '" + o->arch + "'";
  if (std::string e = RejectGiven(parser,
                                  {"d-head", "d-mlp", "d-pos-emb", "afrac", "afrac-locations",
                                   "sink", "bigram", "activation"},
                                  "--arch bdh (a GPT shape option)");
      !e.empty()) {
    return e;
  }
  for (auto [name, from, to] :
       {std::tuple<const char*, int, int*>{"layers", gpt.n_layer, &o->bdh.n_layer},
        {"d-model", gpt.d_model, &o->bdh.d_model},
        {"heads", gpt.n_head, &o->bdh.n_head},
        {"n-ctx", gpt.n_ctx, &o->bdh.n_ctx},
        {"vocab", gpt.vocab_size, &o->bdh.vocab_size}}) {
    if (parser.Given(name)) *to = from;
  }
  if (absl::Status s = o->bdh.Validate(); !s.ok()) return std::string(s.message());
  return "";
}

}  // namespace circuit::cli
