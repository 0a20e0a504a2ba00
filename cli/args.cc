#include "args.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "circuit/core/config.h"

#ifndef CIRCUIT_SOURCE_DIR
#define CIRCUIT_SOURCE_DIR "."
#endif

namespace circuit::cli {

ArgParser::ArgParser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void ArgParser::Option(const std::string& name, const std::string& help, std::string* value) {
  options_.push_back({name, help, *value, false, false, [value](const std::string& v) {
                        *value = v;
                        return true;
                      }});
}
void ArgParser::Option(const std::string& name, const std::string& help, int64_t* value) {
  options_.push_back({name, help, absl::StrCat(*value), false, false,
                      [value](const std::string& v) { return absl::SimpleAtoi(v, value); }});
}
void ArgParser::Option(const std::string& name, const std::string& help, int* value) {
  options_.push_back({name, help, absl::StrCat(*value), false, false,
                      [value](const std::string& v) { return absl::SimpleAtoi(v, value); }});
}
void ArgParser::Option(const std::string& name, const std::string& help, uint64_t* value) {
  options_.push_back({name, help, absl::StrCat(*value), false, false,
                      [value](const std::string& v) { return absl::SimpleAtoi(v, value); }});
}
void ArgParser::Option(const std::string& name, const std::string& help, double* value) {
  options_.push_back({name, help, absl::StrCat(*value), false, false,
                      [value](const std::string& v) { return absl::SimpleAtod(v, value); }});
}
void ArgParser::Flag(const std::string& name, const std::string& help, bool* value) {
  options_.push_back({name, help, *value ? "on" : "off", true, false,
                      [value](const std::string& v) {
                        *value = (v == "1");
                        return true;
                      }});
}
void ArgParser::List(const std::string& name, const std::string& help,
                     std::vector<std::string>* values) {
  options_.push_back({name, help, "", false, true, [values](const std::string& v) {
                        values->push_back(v);
                        return true;
                      }});
}
void ArgParser::Positional(const std::string& name, const std::string& help, std::string* value) {
  positionals_.push_back({name, help, value, true});
}
void ArgParser::OptionalPositional(const std::string& name, const std::string& help,
                                   std::string* value) {
  positionals_.push_back({name, help, value, false});
}

ArgParser::Spec* ArgParser::Find(const std::string& name) {
  for (Spec& s : options_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

void ArgParser::SetDefaultText(const std::string& name, const std::string& text) {
  if (Spec* s = Find(name); s != nullptr) s->default_text = text;
}

bool ArgParser::Given(const std::string& name) const {
  for (const Spec& s : options_) {
    if (s.name == name) return s.given;
  }
  return false;
}

std::string ArgParser::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n\n", description_, "\n");
  if (!positionals_.empty()) {
    absl::StrAppend(&out, "\narguments:\n");
    for (const Pos& p : positionals_) {
      absl::StrAppend(&out, "  ", p.name, std::string(p.name.size() < 22 ? 22 - p.name.size() : 1, ' '),
                      p.help, "\n");
    }
  }
  absl::StrAppend(&out, "\noptions:\n");
  for (const Spec& s : options_) {
    std::string left = absl::StrCat("--", s.name, s.is_flag ? "" : " V");
    absl::StrAppend(&out, "  ", left, std::string(left.size() < 22 ? 22 - left.size() : 1, ' '),
                    s.help);
    if (!s.default_text.empty() && !s.is_flag) absl::StrAppend(&out, " (default: ", s.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help                show this help\n");
  return out;
}

int ArgParser::Parse(int argc, char** argv) {
  size_t next_positional = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << Help();
      return kExitOk;
    }
    if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2), value;
      bool has_value = false;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      Spec* spec = Find(name);
      bool negated = false;
      if (spec == nullptr && name.rfind("no-", 0) == 0) {
        spec = Find(name.substr(3));
        negated = spec != nullptr && spec->is_flag;
        if (!negated) spec = nullptr;
      }
      if (spec == nullptr) {
        std::cerr << usage_.substr(0, usage_.find(' ', 8)) << ": unknown option --" << name
                  << " (see --help)\n";
        return kExitUsage;
      }
      spec->given = true;
      if (spec->is_flag) {
        spec->set(negated ? "0" : (has_value ? (value == "0" || value == "false" ? "0" : "1") : "1"));
        continue;
      }
      if (!has_value) {
        if (i + 1 >= argc) {
          std::cerr << usage_.substr(0, usage_.find(' ', 8)) << ": --" << name << " needs a value\n";
          return kExitUsage;
        }
        value = argv[++i];
      }
      if (!spec->set(value)) {
        std::cerr << usage_.substr(0, usage_.find(' ', 8)) << ": --" << name << ": bad value '"
                  << value << "'\n";
        return kExitUsage;
      }
      continue;
    }
    if (next_positional >= positionals_.size()) {
      std::cerr << usage_.substr(0, usage_.find(' ', 8)) << ": unexpected argument '" << arg
                << "' (see --help)\n";
      return kExitUsage;
    }
    *positionals_[next_positional++].value = arg;
  }
  for (size_t p = next_positional; p < positionals_.size(); ++p) {
    if (positionals_[p].required) {
      std::cerr << usage_.substr(0, usage_.find(' ', 8)) << ": missing argument "
                << positionals_[p].name << " (see --help)\n";
      return kExitUsage;
    }
  }
  return -1;
}

std::string DataPath(const std::string& relative) {
  for (const std::string& root : {std::string("."), std::string(CIRCUIT_SOURCE_DIR)}) {
    std::error_code ec;
    std::string candidate = root + "/data/" + relative;
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return std::string(CIRCUIT_SOURCE_DIR) + "/data/" + relative;
}

std::string DefaultModelPath() {
  if (const char* env = std::getenv("CIRCUIT_MODEL"); env != nullptr && *env != '\0') return env;
  return DataPath("models/default.h5");
}

void AddCommonOptions(ArgParser& parser, CommonOptions* options, bool with_model) {
  if (with_model) {
    if (options->model.empty()) options->model = DefaultModelPath();
    parser.Option("model", "model checkpoint (.h5); env CIRCUIT_MODEL", &options->model);
  }
  if (const char* env = std::getenv("CIRCUIT_DEVICE"); env != nullptr && *env != '\0') {
    options->device = env;
  }
  if (const char* env = std::getenv("CIRCUIT_THREADS"); env != nullptr) {
    (void)absl::SimpleAtoi(env, &options->threads);
  }
  parser.Option("device", std::string(kDeviceHelp) + "; env CIRCUIT_DEVICE", &options->device);
  parser.Option("threads", "CPU threads; 0 = auto: the cores other processes leave idle, measured again at each stage (OMP_NUM_THREADS when set); env CIRCUIT_THREADS", &options->threads);
  parser.Option("seed", "random seed", &options->seed);
}

void AddModelConfigOptions(ArgParser& parser, ModelConfig* c) {
  parser.Option("layers", "transformer blocks", &c->n_layer);
  parser.Option("d-model", "residual width", &c->d_model);
  parser.Option("heads", "attention heads", &c->n_head);
  parser.Option("d-head", "width of one head", &c->d_head);
  parser.Option("d-mlp", "MLP neurons per layer", &c->d_mlp);
  parser.Option("n-ctx", "context length", &c->n_ctx);
  parser.Option("vocab", "vocabulary size (must match the tokenizer)", &c->vocab_size);
  parser.Option("d-pos-emb", "0: added positions; > 0: concatenated, this wide", &c->d_pos_emb);
  parser.Option("afrac", "AbsTopK keeps this fraction of activations (0: off)", &c->afrac);
  parser.Option("afrac-locations", "comma list of AbsTopK locations", &c->afrac_loctypes);
  parser.Flag("sink", "attention sink per head", &c->attn_sink);
  parser.Flag("bigram", "learnable bigram table", &c->bigram_table);
  parser.Option("activation", "gelu or relu", &c->activation);
}

int Fail(const std::string& command, const std::string& message, int code) {
  std::cerr << "circuit " << command << ": " << message << "\n";
  return code;
}

}  // namespace circuit::cli
