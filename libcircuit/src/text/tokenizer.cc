// Byte-level BPE. Token strings in encoder.json / vocab.bpe use GPT-2's
// byte-to-unicode mapping, so that every byte has a printable stand-in.
#include "circuit/core/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "circuit/core/file_util.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

bool IsLetter(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool IsNewline(unsigned char c) { return c == '\n' || c == '\r'; }
bool IsSymbol(unsigned char c) { return !IsSpace(c) && !IsLetter(c) && !IsDigit(c); }

// GPT-2's byte -> code point table: printable bytes map to themselves, the rest
// to 256, 257, ... in byte order.
const std::vector<int>& ByteToCodePoint() {
  static const std::vector<int> table = [] {
    std::vector<int> t(256, -1);
    for (int b = 0; b < 256; ++b) {
      if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) t[b] = b;
    }
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      if (t[b] < 0) t[b] = next++;
    }
    return t;
  }();
  return table;
}

void AppendUtf8(std::string* out, int cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string BytesToPrintable(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) AppendUtf8(&out, ByteToCodePoint()[b]);
  return out;
}

// Inverse of BytesToPrintable; false when a code point is not a byte stand-in.
bool PrintableToBytes(const std::string& s, std::string* bytes) {
  static const std::map<int, int> inverse = [] {
    std::map<int, int> m;
    for (int b = 0; b < 256; ++b) m[ByteToCodePoint()[b]] = b;
    return m;
  }();
  bytes->clear();
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    int cp, len;
    if (c < 0x80) cp = c, len = 1;
    else if ((c >> 5) == 6 && i + 1 < s.size()) cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F), len = 2;
    else if ((c >> 4) == 14 && i + 2 < s.size())
      cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F), len = 3;
    else return false;
    auto it = inverse.find(cp);
    if (it == inverse.end()) return false;
    bytes->push_back(static_cast<char>(it->second));
    i += len;
  }
  return true;
}

size_t MatchAt(std::string_view s, size_t i) {
  const size_t n = s.size();
  auto u = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  // 1. an optional non-letter/digit/newline character followed by letters
  size_t j = i;
  if (!IsLetter(u(j)) && !IsDigit(u(j)) && !IsNewline(u(j)) && j + 1 < n && IsLetter(u(j + 1))) ++j;
  if (IsLetter(u(j))) {
    while (j < n && IsLetter(u(j))) ++j;
    return j - i;
  }
  // 2. one to three digits
  if (IsDigit(u(i))) {
    j = i;
    while (j < n && j < i + 3 && IsDigit(u(j))) ++j;
    return j - i;
  }
  // 3. an optional space, a run of symbols, trailing newlines or slashes
  j = i;
  if (u(j) == ' ' && j + 1 < n && IsSymbol(u(j + 1))) ++j;
  if (IsSymbol(u(j))) {
    while (j < n && IsSymbol(u(j))) ++j;
    while (j < n && (IsNewline(u(j)) || u(j) == '/')) ++j;
    return j - i;
  }
  // Whitespace from here on.
  size_t k = i;
  while (k < n && IsSpace(u(k))) ++k;
  // 4. whitespace ending in newlines
  for (size_t p = k; p > i; --p) {
    if (IsNewline(u(p - 1))) return p - i;
  }
  // 5. whitespace not followed by non-space; 6. whitespace
  if (k == n || k - i == 1) return k - i;
  return k - 1 - i;
}

}  // namespace

std::vector<std::string_view> PreTokenize(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::max<size_t>(1, MatchAt(text, i));
    out.push_back(text.substr(i, len));
    i += len;
  }
  return out;
}

struct Tokenizer::Impl {
  std::vector<std::string> tokens;                 // id -> bytes
  std::vector<std::pair<int32_t, int32_t>> merges;  // rank -> pair
  std::map<std::pair<int32_t, int32_t>, std::pair<int, int32_t>> rank;  // pair -> (rank, merged id)
  std::vector<int32_t> byte_id;                    // byte -> id
  int32_t eot = 0;
  mutable std::mutex mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  absl::Status Index(const std::string& origin) {
    std::unordered_map<std::string, int32_t> by_bytes;
    byte_id.assign(256, -1);
    for (int32_t id = 0; id < static_cast<int32_t>(tokens.size()); ++id) {
      if (id == eot) continue;
      if (!by_bytes.emplace(tokens[id], id).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ": token '", BytesToPrintable(tokens[id]), "' appears twice"));
      }
      if (tokens[id].size() == 1) byte_id[static_cast<unsigned char>(tokens[id][0])] = id;
    }
    for (int b = 0; b < 256; ++b) {
      if (byte_id[b] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": no token for byte ", b));
      }
    }
    rank.clear();
    for (size_t r = 0; r < merges.size(); ++r) {
      auto [a, b] = merges[r];
      auto it = by_bytes.find(tokens[a] + tokens[b]);
      if (it == by_bytes.end()) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": merge ", r + 1, " ('",
                                                       BytesToPrintable(tokens[a]), "' '",
                                                       BytesToPrintable(tokens[b]),
                                                       "') makes a token that is not in the vocabulary"));
      }
      rank.emplace(std::make_pair(a, b), std::make_pair(static_cast<int>(r), it->second));
    }
    return absl::OkStatus();
  }

  std::vector<int32_t> EncodeWord(std::string_view word) const {
    std::vector<int32_t> ids;
    for (unsigned char c : word) ids.push_back(byte_id[c]);
    while (ids.size() > 1) {
      int best_rank = -1;
      int32_t merged = 0;
      size_t at = 0;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        auto it = rank.find({ids[i], ids[i + 1]});
        if (it != rank.end() && (best_rank < 0 || it->second.first < best_rank)) {
          best_rank = it->second.first;
          merged = it->second.second;
          at = i;
        }
      }
      if (best_rank < 0) break;
      const auto pair = merges[best_rank];
      std::vector<int32_t> next;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i >= at && i + 1 < ids.size() && ids[i] == pair.first && ids[i + 1] == pair.second) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(ids[i]);
        }
      }
      ids.swap(next);
    }
    return ids;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(const Tokenizer& other) : impl_(std::make_unique<Impl>()) {
  impl_->tokens = other.impl_->tokens;
  impl_->merges = other.impl_->merges;
  impl_->rank = other.impl_->rank;
  impl_->byte_id = other.impl_->byte_id;
  impl_->eot = other.impl_->eot;
}
Tokenizer& Tokenizer::operator=(const Tokenizer& other) {
  if (this != &other) *this = Tokenizer(other);
  return *this;
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->tokens.size()); }
int32_t Tokenizer::eot_id() const { return impl_->eot; }
std::string Tokenizer::TokenBytes(int32_t id) const {
  if (id == impl_->eot) return std::string(kEndOfText);
  return impl_->tokens.at(id);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (std::string_view word : PreTokenize(text)) {
    std::string key(word);
    auto it = impl_->cache.find(key);
    if (it == impl_->cache.end()) {
      if (impl_->cache.size() > 500000) impl_->cache.clear();
      it = impl_->cache.emplace(std::move(key), impl_->EncodeWord(word)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id >= 0 && id < vocab_size()) out += TokenBytes(id);
  }
  return out;
}

absl::StatusOr<int32_t> Tokenizer::SingleToken(std::string_view text) const {
  std::vector<int32_t> ids = Encode(text);
  if (ids.size() == 1) return ids[0];
  std::string parts;
  for (int32_t id : ids) {
    absl::StrAppend(&parts, parts.empty() ? "" : ", ", "\"", TokenBytes(id), "\"");
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text), "\" is ", ids.size(),
                                                 " tokens for this tokenizer (", parts, ")"));
}

std::string Tokenizer::EncoderJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (int32_t id = 0; id < vocab_size(); ++id) {
    j[id == impl_->eot ? std::string(kEndOfText) : BytesToPrintable(impl_->tokens[id])] = id;
  }
  return j.dump();
}

std::string Tokenizer::VocabBpe() const {
  std::string out = "#version: 0.2\n";
  for (auto [a, b] : impl_->merges) {
    absl::StrAppend(&out, BytesToPrintable(impl_->tokens[a]), " ", BytesToPrintable(impl_->tokens[b]),
                    "\n");
  }
  return out;
}

absl::StatusOr<Tokenizer> Tokenizer::FromStrings(const std::string& encoder_json,
                                                 const std::string& vocab_bpe) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(encoder_json);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("encoder.json: not valid JSON (byte ", e.byte, ")"));
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range: a number like 1e400
    return absl::InvalidArgumentError(absl::StrCat("encoder.json: ", e.what()));
  }
  if (!j.is_object() || j.empty()) {
    return absl::InvalidArgumentError("encoder.json: expected an object of token -> id");
  }
  auto impl = std::make_unique<Impl>();
  impl->tokens.assign(j.size(), std::string());
  std::vector<bool> seen(j.size(), false);
  impl->eot = -1;
  for (const auto& [text, id_json] : j.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() >= static_cast<int64_t>(j.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("encoder.json: token '", text, "': id must be an integer in [0, ", j.size(), ")"));
    }
    const int32_t id = id_json.get<int32_t>();
    if (seen[id]) return absl::InvalidArgumentError(absl::StrCat("encoder.json: id ", id, " used twice"));
    seen[id] = true;
    if (text == kEndOfText) {
      impl->eot = id;
      continue;
    }
    if (!PrintableToBytes(text, &impl->tokens[id]) || impl->tokens[id].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("encoder.json: token '", text, "' is not in GPT-2 byte-level form"));
    }
  }
  if (impl->eot < 0) return absl::InvalidArgumentError("encoder.json: no <|endoftext|> token");
  std::unordered_map<std::string, int32_t> by_text;
  for (const auto& [text, id_json] : j.items()) by_text[text] = id_json.get<int32_t>();
  std::istringstream lines(vocab_bpe);
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocab.bpe: line ", line_no, ": expected two tokens separated by one space"));
    }
    auto a = by_text.find(line.substr(0, space)), b = by_text.find(line.substr(space + 1));
    if (a == by_text.end() || b == by_text.end()) {
      return absl::InvalidArgumentError(absl::StrCat("vocab.bpe: line ", line_no, ": '", line,
                                                     "' names a token missing from encoder.json"));
    }
    impl->merges.push_back({a->second, b->second});
  }
  CIRCUIT_RETURN_IF_ERROR(impl->Index("encoder.json/vocab.bpe"));
  return Tokenizer(std::move(impl));
}

absl::StatusOr<Tokenizer> Tokenizer::FromFiles(const std::string& encoder_json_path,
                                               const std::string& vocab_bpe_path) {
  auto slurp = [](const std::string& path, std::string* out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::stringstream s;
    s << in.rdbuf();
    *out = s.str();
    return true;
  };
  std::string encoder, merges;
  if (!slurp(encoder_json_path, &encoder)) {
    return absl::NotFoundError(absl::StrCat(encoder_json_path, ": cannot read"));
  }
  if (!slurp(vocab_bpe_path, &merges)) {
    return absl::NotFoundError(absl::StrCat(vocab_bpe_path, ": cannot read"));
  }
  absl::StatusOr<Tokenizer> tok = FromStrings(encoder, merges);
  if (!tok.ok()) return Annotate(tok.status(), std::filesystem::path(encoder_json_path).parent_path().string());
  return tok;
}

absl::StatusOr<Tokenizer> Tokenizer::Train(const std::vector<std::string>& texts, int vocab_size) {
  if (vocab_size < 257) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: vocab_size must be >= 257 (256 bytes + <|endoftext|>), got ", vocab_size));
  }
  // Distinct pre-tokens with their counts, in first-seen order (deterministic).
  std::unordered_map<std::string_view, int> word_index;
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (const std::string& text : texts) {
    for (std::string_view w : PreTokenize(text)) {
      auto [it, added] = word_index.emplace(w, static_cast<int>(words.size()));
      if (added) {
        words.emplace_back();
        for (unsigned char c : w) words.back().push_back(c);
        counts.push_back(0);
      }
      ++counts[it->second];
    }
  }
  auto impl = std::make_unique<Impl>();
  for (int b = 0; b < 256; ++b) impl->tokens.push_back(std::string(1, static_cast<char>(b)));
  std::map<std::pair<int32_t, int32_t>, int64_t> pair_count;
  std::map<std::pair<int32_t, int32_t>, std::vector<int>> pair_words;
  auto add_word = [&](int w, int sign) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      auto key = std::make_pair(s[i], s[i + 1]);
      pair_count[key] += sign * counts[w];
      if (sign > 0) pair_words[key].push_back(w);
    }
  };
  for (int w = 0; w < static_cast<int>(words.size()); ++w) add_word(w, +1);
  while (static_cast<int>(impl->tokens.size()) < vocab_size - 1) {
    auto best = pair_count.end();
    for (auto it = pair_count.begin(); it != pair_count.end(); ++it) {
      if (it->second > 0 && (best == pair_count.end() || it->second > best->second)) best = it;
    }
    if (best == pair_count.end() || best->second < 2) break;  // nothing left worth merging
    const auto pair = best->first;
    const int32_t merged = static_cast<int32_t>(impl->tokens.size());
    impl->tokens.push_back(impl->tokens[pair.first] + impl->tokens[pair.second]);
    impl->merges.push_back(pair);
    std::vector<int> affected = std::move(pair_words[pair]);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    for (int w : affected) {
      auto& s = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) has = has || (s[i] == pair.first && s[i + 1] == pair.second);
      if (!has) continue;
      add_word(w, -1);
      std::vector<int32_t> next;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == pair.first && s[i + 1] == pair.second) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s.swap(next);
      add_word(w, +1);
    }
    pair_count.erase(pair);
  }
  // Pad with unused byte-pair tokens is not needed: the vocabulary is exactly
  // what was learned; fail loudly when the text was too small.
  if (static_cast<int>(impl->tokens.size()) < vocab_size - 1) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: the training text allows only ",
                                                   impl->tokens.size() + 1, " tokens, asked for ",
                                                   vocab_size));
  }
  impl->eot = static_cast<int32_t>(impl->tokens.size());
  impl->tokens.push_back(std::string(kEndOfText));
  CIRCUIT_RETURN_IF_ERROR(impl->Index("tokenizer"));
  return Tokenizer(std::move(impl));
}

absl::Status Tokenizer::SaveFiles(const std::string& directory) const {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"encoder.json", EncoderJson()},
                                   {"vocab.bpe", VocabBpe()}}) {
    CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(directory + "/" + name, text));
  }
  return absl::OkStatus();
}

}  // namespace circuit
