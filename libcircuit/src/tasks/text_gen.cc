// Random building blocks of task prompts. The point is variety: prompts that
// differ in names, string contents, and the unrelated code around the spot the
// task tests, so that a circuit cannot key on one fixed template.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

// Words for identifiers: no Python keywords or common builtins.
const std::vector<std::string>& NameWords() {
  static const std::vector<std::string> kWords = {
      "alpha",  "batch",  "block",  "buffer", "cache",  "chunk",  "color",  "config", "count",
      "data",   "delta",  "entry",  "error",  "event",  "field",  "flag",   "frame",  "group",
      "handle", "header", "image",  "item",   "label",  "layer",  "level",  "limit",  "line",
      "mode",   "model",  "name",   "node",   "offset", "order",  "page",   "parent", "point",
      "price",  "queue",  "ratio",  "record", "region", "report", "result", "row",    "rule",
      "sample", "scale",  "score",  "seed",   "shape",  "signal", "size",   "source", "span",
      "stage",  "state",  "status", "step",   "store",  "table",  "tag",    "target", "task",
      "text",   "title",  "token",  "total",  "track",  "tree",   "unit",   "user",   "value",
      "weight", "width",  "window", "word",   "zone",   "path",   "key",    "index",  "query"};
  return kWords;
}

// Short names likely to be single tokens of a code tokenizer (with a leading space).
const std::vector<std::string>& ShortNames() {
  static const std::vector<std::string> kNames = {
      "x",     "y",    "n",     "i",     "j",     "k",     "a",     "b",    "s",
      "value", "count", "name", "key",   "item",  "data",  "result", "total", "size",
      "index", "line", "text",  "path",  "node",  "left",  "right", "start", "end",
      "first", "last", "low",   "high",  "width", "height", "score", "offset", "step"};
  return kNames;
}

const std::vector<std::string>& TextWords() {
  static const std::vector<std::string> kWords = {
      "hello",   "world",  "error",   "done",    "file",   "not",    "found",  "value",
      "invalid", "input",  "loading", "saving",  "the",    "data",   "user",   "name",
      "is",      "missing", "total",  "count",   "result", "ok",     "failed", "start",
      "end",     "of",     "line",    "expected", "got",   "number", "empty",  "list",
      "ready",   "waiting", "for",    "server",  "path",   "to",     "config", "unknown",
      "key",     "new",    "item",    "added",   "removed", "skip",  "warning", "reading"};
  return kWords;
}

std::string UpperCase(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

bool Avoided(const std::string& name, const std::vector<std::string>& avoid) {
  return std::find(avoid.begin(), avoid.end(), name) != avoid.end();
}

std::string FreshIdentifier(TextRng& rng, const std::vector<std::string>& avoid) {
  for (int tries = 0; tries < 50; ++tries) {
    std::string name = Identifier(rng);
    if (!Avoided(name, avoid)) return name;
  }
  return "unused_name";
}

std::string ImportLines(TextRng& rng) {
  static const std::vector<std::string> kImports = {
      "import os\n",         "import sys\n",  "import json\n",   "import re\n",
      "import math\n",       "import time\n", "import logging\n", "import random\n",
      "from collections import defaultdict\n", "from pathlib import Path\n",
      "from typing import Dict, List, Optional\n", "from dataclasses import dataclass\n"};
  // A few different lines, in the order drawn.
  std::vector<int> chosen;
  const int n = rng.Between(1, 3);
  while (static_cast<int>(chosen.size()) < n) {
    const int i = rng.Below(static_cast<int>(kImports.size()));
    if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
  }
  std::string out;
  for (int i : chosen) out += kImports[i];
  return out;
}

std::string Statement(TextRng& rng, const std::string& pad, const FillerOptions& options,
                      const std::vector<std::string>& avoid) {
  const std::string name = FreshIdentifier(rng, avoid);
  switch (rng.Below(options.strings ? 7 : 5)) {
    case 0:
      return absl::StrCat(pad, name, " = ", SmallNumber(rng), "\n");
    case 1:
      return absl::StrCat(pad, "# ", Words(rng, 2, 7), "\n");
    case 2:
      return absl::StrCat(pad, name, " = ", FreshIdentifier(rng, avoid), "(",
                          SmallNumber(rng), ")\n");
    case 3:
      if (options.lists) {
        return absl::StrCat(pad, name, " = [", SmallNumber(rng), ", ", SmallNumber(rng), "]\n");
      }
      return absl::StrCat(pad, name, " = ", SmallNumber(rng), " * ", SmallNumber(rng), "\n");
    case 4:
      return absl::StrCat(pad, name, " += ", SmallNumber(rng), "\n");
    case 5: {
      const std::string q = Quote(rng);
      return absl::StrCat(pad, name, " = ", q, Words(rng, 1, 4), q, "\n");
    }
    default: {
      const std::string q = Quote(rng);
      return absl::StrCat(pad, "print(", q, Words(rng, 1, 5), q, ")\n");
    }
  }
}

std::string SmallFunction(TextRng& rng, const FillerOptions& options) {
  const std::string name = Identifier(rng);
  const std::string arg = ShortName(rng);
  std::string out = FunctionHeader(rng, name, {arg});
  out += BodyLines(rng, 4, 3, options, {arg});
  if (rng.Chance(0.5)) {
    out += absl::StrCat("    if ", arg, " > ", SmallNumber(rng), ":\n        return ", arg,
                        " - ", SmallNumber(rng), "\n");
  }
  out += absl::StrCat("    return ", arg, "\n");
  return out;
}

std::string SmallClass(TextRng& rng, const FillerOptions& options) {
  const std::string attr = Identifier(rng);
  std::string out = absl::StrCat("class ", ClassName(rng), ":\n");
  if (options.strings && rng.Chance(0.5)) out += absl::StrCat("    \"\"\"", Words(rng, 2, 6), ".\"\"\"\n\n");
  out += absl::StrCat("    def ", Identifier(rng), "(self):\n        return self.", attr, "\n");
  return out;
}

}  // namespace

uint64_t TextRng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int TextRng::Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
int TextRng::Between(int lo, int hi) { return lo + Below(hi - lo + 1); }
bool TextRng::Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

std::string Identifier(TextRng& rng) {
  const std::string& first = rng.Pick(NameWords());
  if (rng.Chance(0.5)) return first;
  std::string second = rng.Pick(NameWords());
  if (second == first) second = "list";
  return absl::StrCat(first, "_", second);
}

std::string ClassName(TextRng& rng) {
  std::string out;
  const int n = rng.Between(1, 2);
  for (int i = 0; i < n; ++i) {
    std::string w = rng.Pick(NameWords());
    w[0] = static_cast<char>(w[0] - 'a' + 'A');
    out += w;
  }
  return out;
}

std::string ShortName(TextRng& rng) { return rng.Pick(ShortNames()); }

std::pair<std::string, std::string> TwoShortNames(TextRng& rng) {
  std::string a = ShortName(rng), b = ShortName(rng);
  while (b == a) b = ShortName(rng);
  return {a, b};
}

std::string Words(TextRng& rng, int min_count, int max_count) {
  std::vector<std::string> words;
  const int n = rng.Between(min_count, max_count);
  for (int i = 0; i < n; ++i) words.push_back(rng.Pick(TextWords()));
  return absl::StrJoin(words, " ");
}

std::string SmallNumber(TextRng& rng) {
  switch (rng.Below(3)) {
    case 0: return std::to_string(rng.Below(10));
    case 1: return std::to_string(rng.Between(10, 99));
    default: return std::to_string(rng.Between(100, 999));
  }
}

std::string SimpleValue(TextRng& rng) {
  switch (rng.Below(4)) {
    case 0: return SmallNumber(rng);
    case 1: return ShortName(rng);
    case 2: return absl::StrCat(ShortName(rng), ".", rng.Pick(NameWords()));
    default: return Identifier(rng);
  }
}

std::string Quote(TextRng& rng) { return rng.Chance(0.5) ? "\"" : "'"; }

std::string ShowText(const std::string& text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

std::string Filler(TextRng& rng, const FillerOptions& options) {
  std::string out;
  const int n = rng.Between(options.min_snippets, options.max_snippets);
  for (int i = 0; i < n; ++i) {
    switch (rng.Below(5)) {
      case 0: out += ImportLines(rng); break;
      case 1: out += absl::StrCat(UpperCase(Identifier(rng)), " = ", SmallNumber(rng), "\n"); break;
      case 2: out += SmallFunction(rng, options); break;
      case 3: out += SmallClass(rng, options); break;
      default: out += absl::StrCat("# ", Words(rng, 3, 9), "\n"); break;
    }
    out += "\n";
  }
  return out;
}

std::string BodyLines(TextRng& rng, int indent, int max_lines, const FillerOptions& options,
                      const std::vector<std::string>& avoid) {
  const std::string pad(indent, ' ');
  std::string out;
  const int n = rng.Between(0, max_lines);
  for (int i = 0; i < n; ++i) out += Statement(rng, pad, options, avoid);
  return out;
}

std::string FunctionHeader(TextRng& rng, const std::string& name,
                           const std::vector<std::string>& args) {
  std::string out = absl::StrCat("def ", name, "(", absl::StrJoin(args, ", "), "):\n");
  if (rng.Chance(0.3)) out += absl::StrCat("    \"\"\"", Words(rng, 2, 8), ".\"\"\"\n");
  return out;
}

}  // namespace circuit::internal
