// stic/text/tokenizer.cpp — see tokenizer.h.
#include "stic/text/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <queue>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "stic/util/error.h"

namespace stic {

namespace {

constexpr const char kSpace[] = "\xE2\x96\x81";  // U+2581 "▁"
constexpr size_t kSpaceLen = 3;
constexpr const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// ---- UTF-8 -----------------------------------------------------------------------------------

// Length of the valid UTF-8 character at s[0..n), or 0 when it is malformed (overlong forms,
// surrogates and code points above U+10FFFF included), as SentencePiece's IsValidDecodeUTF8.
size_t valid_utf8_len(const unsigned char* s, size_t n) {
  if (n == 0) return 0;
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Copies `in`, replacing every byte that does not start a valid UTF-8 character with U+FFFD.
std::string sanitize_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;
  while (i < in.size()) {
    const size_t len = valid_utf8_len(p + i, in.size() - i);
    if (len == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(in.data() + i, len);
      i += len;
    }
  }
  return out;
}

// SentencePiece's OneCharLen: the length a UTF-8 lead byte announces.
size_t one_char_len(unsigned char c) {
  static const unsigned char kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

// ---- protobuf wire format --------------------------------------------------------------------

class WireReader {
 public:
  WireReader(const std::string& path, const unsigned char* begin, const unsigned char* end,
             const unsigned char* origin)
      : path_(path), p_(begin), end_(end), origin_(origin) {}

  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) corrupt("truncated varint");
      const unsigned char b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    corrupt("varint longer than 10 bytes");
  }

  // Returns (field number, wire type).
  std::pair<uint32_t, int> tag() {
    const uint64_t t = varint();
    const uint32_t field = static_cast<uint32_t>(t >> 3);
    const int wire = static_cast<int>(t & 7);
    if (field == 0) corrupt("field number 0");
    return {field, wire};
  }

  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) corrupt("length-delimited field runs past the end");
    std::string_view v(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return v;
  }

  WireReader sub() {
    std::string_view b = bytes();
    const auto* s = reinterpret_cast<const unsigned char*>(b.data());
    return WireReader(path_, s, s + b.size(), origin_);
  }

  float fixed32_float() {
    if (end_ - p_ < 4) corrupt("truncated fixed32");
    uint32_t u = static_cast<uint32_t>(p_[0]) | (static_cast<uint32_t>(p_[1]) << 8) |
                 (static_cast<uint32_t>(p_[2]) << 16) | (static_cast<uint32_t>(p_[3]) << 24);
    p_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }

  void skip(int wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1:
        if (end_ - p_ < 8) corrupt("truncated fixed64");
        p_ += 8;
        break;
      case 2: bytes(); break;
      case 5:
        if (end_ - p_ < 4) corrupt("truncated fixed32");
        p_ += 4;
        break;
      default: corrupt(str_cat("unsupported wire type ", wire));
    }
  }

  void expect(int wire, int want, const char* what) {
    if (wire != want) corrupt(str_cat(what, " has wire type ", wire, ", expected ", want));
  }

  [[noreturn]] void corrupt(const std::string& what) const {
    fail(path_, ": not a valid SentencePiece model (", what, " at byte ", p_ - origin_,
         "); expected a tokenizer.model ModelProto");
  }

 private:
  const std::string& path_;
  const unsigned char* p_;
  const unsigned char* end_;
  const unsigned char* origin_;
};

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

std::string read_file_bytes(const std::string& path, const char* expected) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open (expected ", expected, ")");
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, ": read error (expected ", expected, ")");
  return data;
}

bool file_exists(const std::string& path) {
  std::ifstream f(path);
  return static_cast<bool>(f);
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

// ---- the parsed model ------------------------------------------------------------------------

namespace detail {

struct SpModel {
  struct Piece {
    std::string piece;
    float score = 0.f;
    int type = kNormal;
  };
  std::string path;
  std::vector<Piece> pieces;
  std::unordered_map<std::string_view, int32_t> normal;    // NORMAL, USER_DEFINED, UNUSED
  std::unordered_map<std::string_view, int32_t> reserved;  // CONTROL, UNKNOWN, BYTE
  std::vector<std::string_view> user_defined;               // longest first
  int32_t byte_ids[256];
  // trainer_spec
  int model_type = 1;  // UNIGRAM=1 BPE=2 WORD=3 CHAR=4
  bool byte_fallback = false;
  bool treat_ws_as_suffix = false;
  int32_t spec_unk = 0, spec_bos = 1, spec_eos = 2, spec_pad = -1;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
  // normalizer_spec
  std::string normalizer_name;
  bool has_charsmap = false;
  bool add_dummy_prefix = true;
  bool remove_extra_ws = true;
  bool escape_ws = true;
  // resolved
  int32_t unk_id = -1, bos_id = -1, eos_id = -1, pad_id = -1;

  int32_t piece_to_id(std::string_view s) const {
    auto r = reserved.find(s);
    if (r != reserved.end()) return r->second;
    auto n = normal.find(s);
    if (n != normal.end()) return n->second;
    return unk_id;
  }
  int32_t find(std::string_view s) const {
    auto r = reserved.find(s);
    if (r != reserved.end()) return r->second;
    auto n = normal.find(s);
    return n != normal.end() ? n->second : -1;
  }
};

}  // namespace detail

namespace {

std::shared_ptr<detail::SpModel> parse_model(const std::string& path, const std::string& data) {
  auto m = std::make_shared<detail::SpModel>();
  m->path = path;
  if (data.empty()) fail(path, ": empty file (expected a SentencePiece tokenizer.model)");
  const auto* begin = reinterpret_cast<const unsigned char*>(data.data());
  WireReader r(path, begin, begin + data.size(), begin);
  bool saw_trainer = false;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) {  // repeated SentencePiece pieces
      r.expect(wire, 2, "ModelProto.pieces");
      WireReader pr = r.sub();
      detail::SpModel::Piece p;
      bool has_piece = false;
      while (!pr.done()) {
        auto [f, w] = pr.tag();
        if (f == 1) {
          pr.expect(w, 2, "SentencePiece.piece");
          p.piece = std::string(pr.bytes());
          has_piece = true;
        } else if (f == 2) {
          pr.expect(w, 5, "SentencePiece.score");
          p.score = pr.fixed32_float();
        } else if (f == 3) {
          pr.expect(w, 0, "SentencePiece.type");
          p.type = static_cast<int>(pr.varint());
        } else {
          pr.skip(w);
        }
      }
      if (!has_piece || p.piece.empty())
        r.corrupt(str_cat("piece ", m->pieces.size(), " has no text"));
      if (p.type < 1 || p.type > 6)
        r.corrupt(str_cat("piece ", m->pieces.size(), " has unknown type ", p.type));
      m->pieces.push_back(std::move(p));
    } else if (field == 2) {  // TrainerSpec
      r.expect(wire, 2, "ModelProto.trainer_spec");
      saw_trainer = true;
      WireReader t = r.sub();
      while (!t.done()) {
        auto [f, w] = t.tag();
        auto vint = [&]() { t.expect(w, 0, "TrainerSpec field"); return t.varint(); };
        auto vstr = [&]() { t.expect(w, 2, "TrainerSpec field"); return std::string(t.bytes()); };
        switch (f) {
          case 3: m->model_type = static_cast<int>(vint()); break;
          case 24: m->treat_ws_as_suffix = vint() != 0; break;
          case 35: m->byte_fallback = vint() != 0; break;
          case 40: m->spec_unk = as_int32(vint()); break;
          case 41: m->spec_bos = as_int32(vint()); break;
          case 42: m->spec_eos = as_int32(vint()); break;
          case 43: m->spec_pad = as_int32(vint()); break;
          case 45: m->unk_piece = vstr(); break;
          case 46: m->bos_piece = vstr(); break;
          case 47: m->eos_piece = vstr(); break;
          case 48: m->pad_piece = vstr(); break;
          default: t.skip(w);
        }
      }
    } else if (field == 3) {  // NormalizerSpec
      r.expect(wire, 2, "ModelProto.normalizer_spec");
      WireReader n = r.sub();
      while (!n.done()) {
        auto [f, w] = n.tag();
        switch (f) {
          case 1: n.expect(w, 2, "NormalizerSpec.name"); m->normalizer_name = std::string(n.bytes()); break;
          case 2: n.expect(w, 2, "NormalizerSpec.precompiled_charsmap"); m->has_charsmap = !n.bytes().empty(); break;
          case 3: n.expect(w, 0, "NormalizerSpec.add_dummy_prefix"); m->add_dummy_prefix = n.varint() != 0; break;
          case 4: n.expect(w, 0, "NormalizerSpec.remove_extra_whitespaces"); m->remove_extra_ws = n.varint() != 0; break;
          case 5: n.expect(w, 0, "NormalizerSpec.escape_whitespaces"); m->escape_ws = n.varint() != 0; break;
          default: n.skip(w);
        }
      }
    } else if (field == 4 || field == 5) {  // self_test_data, denormalizer_spec
      r.expect(wire, 2, "ModelProto field");
      r.skip(wire);
    } else {
      r.corrupt(str_cat("unexpected top-level field ", field));
    }
  }
  if (m->pieces.empty()) fail(path, ": not a valid SentencePiece model (no pieces); expected a tokenizer.model ModelProto");
  if (!saw_trainer) fail(path, ": not a valid SentencePiece model (no trainer_spec); expected a tokenizer.model ModelProto");
  if (m->model_type != 2) {
    static const char* names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    const char* name = (m->model_type >= 1 && m->model_type <= 4) ? names[m->model_type] : "?";
    fail(path, ": SentencePiece model_type ", name, " (", m->model_type,
         ") is not supported; expected BPE (LLaMA/Mistral-style tokenizer.model)");
  }
  if (m->has_charsmap)
    fail(path, ": SentencePiece normalizer '", m->normalizer_name,
         "' with a precompiled charsmap is not supported; expected the 'identity' normalizer");
  std::fill(std::begin(m->byte_ids), std::end(m->byte_ids), -1);
  for (size_t i = 0; i < m->pieces.size(); ++i) {
    const auto& p = m->pieces[i];
    const int32_t id = static_cast<int32_t>(i);
    const bool normal = p.type == kNormal || p.type == kUserDefined || p.type == kUnused;
    auto& map = normal ? m->normal : m->reserved;
    if (!map.emplace(std::string_view(p.piece), id).second)
      fail(path, ": piece '", p.piece, "' (id ", id, ") is defined twice; expected unique pieces");
    if (p.type == kUserDefined) m->user_defined.push_back(p.piece);
    if (p.type == kUnknown) {
      if (m->unk_id >= 0) fail(path, ": more than one UNKNOWN piece; expected exactly one");
      m->unk_id = id;
    }
    if (p.type == kByte) {
      unsigned v = 0;
      if (p.piece.size() != 6 || p.piece.compare(0, 3, "<0x") != 0 || p.piece[5] != '>' ||
          std::sscanf(p.piece.c_str() + 3, "%2X", &v) != 1)
        fail(path, ": BYTE piece '", p.piece, "' (id ", id, ") is not of the form <0xNN>");
      m->byte_ids[v] = id;
    }
  }
  if (m->unk_id < 0) fail(path, ": no UNKNOWN piece; expected one (<unk>)");
  std::sort(m->user_defined.begin(), m->user_defined.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  m->bos_id = m->spec_bos >= 0 ? m->find(m->bos_piece) : -1;
  m->eos_id = m->spec_eos >= 0 ? m->find(m->eos_piece) : -1;
  m->pad_id = m->spec_pad >= 0 ? m->find(m->pad_piece) : -1;
  return m;
}

}  // namespace

// ---- SentencePiece BPE -----------------------------------------------------------------------

void Tokenizer::sp_encode(const std::string& raw, bool dummy_prefix, std::vector<int32_t>* out) const {
  const detail::SpModel& m = *model_;
  // 1. Normalise (identity): invalid UTF-8 -> U+FFFD, spaces -> ▁, dummy prefix, extra spaces.
  const std::string text = sanitize_utf8(raw);
  std::string_view in(text);
  if (m.remove_extra_ws) {
    while (!in.empty() && in[0] == ' ') in.remove_prefix(1);
  }
  if (in.empty()) return;
  const std::string ws = m.escape_ws ? std::string(kSpace) : std::string(" ");
  std::string norm;
  norm.reserve(in.size() * 2 + 3);
  if (dummy_prefix && !m.treat_ws_as_suffix) norm += ws;
  bool prev_space = m.remove_extra_ws;
  for (char c : in) {
    if (c == ' ') {
      if (prev_space) continue;
      norm += m.escape_ws ? ws : std::string(" ");
      prev_space = m.remove_extra_ws;
    } else {
      norm += c;
      prev_space = false;
    }
  }
  if (m.remove_extra_ws) {
    while (norm.size() >= ws.size() && norm.compare(norm.size() - ws.size(), ws.size(), ws) == 0)
      norm.resize(norm.size() - ws.size());
  }
  if (dummy_prefix && m.treat_ws_as_suffix) norm += ws;
  if (norm.empty()) return;

  // 2. Split into characters (user-defined pieces whole, and frozen).
  struct Symbol {
    int prev, next;
    size_t begin, len;
    bool freeze;
  };
  std::vector<Symbol> sym;
  {
    size_t pos = 0;
    while (pos < norm.size()) {
      size_t len = 0;
      bool freeze = false;
      for (std::string_view u : m.user_defined) {
        if (norm.compare(pos, u.size(), u) == 0) {
          len = u.size();
          freeze = true;
          break;
        }
      }
      if (!freeze) len = std::min(one_char_len(static_cast<unsigned char>(norm[pos])), norm.size() - pos);
      const int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, -1, pos, len, freeze});
      pos += len;
    }
    for (size_t i = 0; i + 1 < sym.size(); ++i) sym[i].next = static_cast<int>(i + 1);
  }

  // 3. Merge the best-scoring adjacent pair until none is in the vocabulary.
  struct Pair {
    float score;
    int left, right;
    size_t size;
  };
  auto worse = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
  auto piece_of = [&](int i) { return std::string_view(norm).substr(sym[i].begin, sym[i].len); };
  auto maybe_add = [&](int left, int right) {
    if (left < 0 || right < 0 || sym[left].freeze || sym[right].freeze) return;
    const std::string_view merged = std::string_view(norm).substr(sym[left].begin, sym[left].len + sym[right].len);
    auto it = m.normal.find(merged);
    if (it == m.normal.end()) return;
    const auto& piece = m.pieces[it->second];
    agenda.push({piece.score, left, right, merged.size()});
    if (piece.type == kUnused) rev_merge[merged] = {piece_of(left), piece_of(right)};
  };
  for (size_t i = 1; i < sym.size(); ++i) maybe_add(static_cast<int>(i - 1), static_cast<int>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& l = sym[top.left];
    Symbol& r = sym[top.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != top.size) continue;  // stale
    l.len += r.len;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = top.left;
    r.len = 0;
    maybe_add(l.prev, top.left);
    maybe_add(top.left, l.next);
  }

  // 4. Map to ids: unused pieces re-split, unknown pieces to bytes (or one <unk> per run).
  bool prev_unk = false;
  std::function<void(std::string_view)> emit = [&](std::string_view w) {
    int32_t id = m.piece_to_id(w);
    if (id != m.unk_id && m.pieces[id].type == kUnused) {
      auto it = rev_merge.find(w);
      if (it != rev_merge.end()) {
        emit(it->second.first);
        emit(it->second.second);
        return;
      }
    }
    if (id == m.unk_id) {
      if (m.byte_fallback) {
        for (unsigned char b : w) {
          const int32_t bid = m.byte_ids[b];
          out->push_back(bid >= 0 ? bid : m.unk_id);
        }
        prev_unk = false;
        return;
      }
      if (!prev_unk) out->push_back(id);
      prev_unk = true;
      return;
    }
    out->push_back(id);
    prev_unk = false;
  };
  for (int i = 0; i >= 0 && i < static_cast<int>(sym.size()); i = sym[i].next) emit(piece_of(i));
}

// ---- construction ----------------------------------------------------------------------------

Tokenizer Tokenizer::from_model_file(const std::string& path) {
  const std::string data = read_file_bytes(path, "a SentencePiece tokenizer.model");
  Tokenizer t;
  t.model_ = parse_model(path, data);
  t.source_ = path;
  t.legacy_ = true;
  t.add_prefix_space_ = t.model_->add_dummy_prefix;
  t.bos_ = t.model_->bos_id;
  t.eos_ = t.model_->eos_id;
  t.unk_ = t.model_->unk_id;
  t.pad_ = t.model_->pad_id;
  for (int32_t id : {t.bos_, t.eos_, t.unk_, t.pad_})
    if (id >= 0) t.splitters_.emplace_back(t.model_->pieces[id].piece, id);
  std::sort(t.splitters_.begin(), t.splitters_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  t.splitters_.erase(std::unique(t.splitters_.begin(), t.splitters_.end()), t.splitters_.end());
  return t;
}

namespace {

nlohmann::json read_json(const std::string& path) {
  const std::string data = read_file_bytes(path, "a JSON file");
  try {
    return nlohmann::json::parse(data);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": invalid JSON (", e.what(), ")");
  }
}

// A special-token entry of a config: "<s>" or {"content": "<s>", ...}; empty when absent/null.
std::string token_content(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

bool json_bool(const nlohmann::json& obj, const char* key, bool dflt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (it->is_boolean()) return it->get<bool>();
  return dflt;
}

}  // namespace

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  const std::string model_path = dir + "/tokenizer.model";
  if (!file_exists(model_path)) {
    if (file_exists(dir + "/tokenizer.json"))
      fail(model_path, ": not found (only tokenizer.json is present; stic needs the SentencePiece tokenizer.model)");
    fail(model_path, ": not found (expected a SentencePiece tokenizer.model in the model folder)");
  }
  Tokenizer t = from_model_file(model_path);
  t.source_ = dir;
  t.hf_metaspace_ = true;
  t.add_prefix_space_ = true;  // HF's LlamaTokenizer default, whatever the model says

  std::map<std::string, std::string> special_names;  // bos_token -> content, ...
  auto take_special_names = [&](const nlohmann::json& j) {
    for (const char* k : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
      if (j.contains(k)) {
        const std::string c = token_content(j[k]);
        if (!c.empty()) special_names[k] = c;
      }
    }
  };
  std::vector<std::string> additional_special;
  auto take_additional = [&](const nlohmann::json& j) {
    if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array())
      for (const auto& v : j["additional_special_tokens"]) {
        const std::string c = token_content(v);
        if (!c.empty()) additional_special.push_back(c);
      }
  };
  auto int_id = [](const std::string& path, const std::string& s) -> int32_t {
    try {
      size_t used = 0;
      const long v = std::stol(s, &used);
      if (used != s.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(s);
      return static_cast<int32_t>(v);
    } catch (const std::exception&) {
      fail(path, ": added token id '", s, "' is not a non-negative integer");
    }
  };

  // added_tokens.json: {"<image>": 32000}
  const std::string added_path = dir + "/added_tokens.json";
  if (file_exists(added_path)) {
    const auto j = read_json(added_path);
    if (!j.is_object()) fail(added_path, ": expected a JSON object {\"token\": id}");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
        fail(added_path, ": token '", it.key(), "' has a non-integer id; expected {\"token\": id}");
      t.add_token_full({it.key(), static_cast<int32_t>(it.value().get<int64_t>()), false});
    }
  }
  // tokenizer_config.json: flags, special token names, added_tokens_decoder.
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (file_exists(cfg_path)) {
    const auto j = read_json(cfg_path);
    if (!j.is_object()) fail(cfg_path, ": expected a JSON object");
    t.legacy_ = json_bool(j, "legacy", true);
    t.add_prefix_space_ = json_bool(j, "add_prefix_space", true);
    t.add_bos_token_ = json_bool(j, "add_bos_token", true);
    t.add_eos_token_ = json_bool(j, "add_eos_token", false);
    take_special_names(j);
    take_additional(j);
    if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
      for (auto it = j["added_tokens_decoder"].begin(); it != j["added_tokens_decoder"].end(); ++it) {
        const auto& v = it.value();
        const std::string c = token_content(v);
        if (c.empty()) fail(cfg_path, ": added_tokens_decoder[\"", it.key(), "\"] has no content");
        AddedToken a{c, int_id(cfg_path, it.key()), json_bool(v, "special", false)};
        a.lstrip = json_bool(v, "lstrip", false);
        a.rstrip = json_bool(v, "rstrip", false);
        t.add_token_full(a);
      }
    }
  }
  const std::string stm_path = dir + "/special_tokens_map.json";
  if (file_exists(stm_path)) {
    const auto j = read_json(stm_path);
    if (!j.is_object()) fail(stm_path, ": expected a JSON object");
    take_special_names(j);
    take_additional(j);
  }
  // tokenizer.json: only "added_tokens" (the most complete record of them).
  const std::string tj_path = dir + "/tokenizer.json";
  if (file_exists(tj_path)) {
    const auto j = read_json(tj_path);
    if (j.is_object() && j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& v : j["added_tokens"]) {
        if (!v.is_object() || !v.contains("id") || !v["id"].is_number_integer() || token_content(v).empty())
          fail(tj_path, ": added_tokens entry ", v.dump(), " lacks an integer id or a content");
        AddedToken a{token_content(v), static_cast<int32_t>(v["id"].get<int64_t>()), json_bool(v, "special", false)};
        a.lstrip = json_bool(v, "lstrip", false);
        a.rstrip = json_bool(v, "rstrip", false);
        t.add_token_full(a);
      }
    }
    // The dummy-prefix rule as tokenizer.json spells it (it wins over tokenizer_config.json):
    //   normalizer Prepend("▁")              -> every text piece gets "▁" (legacy conversion)
    //   pre_tokenizer Metaspace(scheme)      -> always | first (start of text only) | never
    //   neither (Replace(" ", "▁") only)     -> no prefix at all (what transformers 5 saves
    //                                           for legacy=false)
    if (j.is_object() && (j.contains("normalizer") || j.contains("pre_tokenizer"))) {
      auto flatten = [](const nlohmann::json& node, const char* list_key) {
        std::vector<nlohmann::json> out;
        if (!node.is_object()) return out;
        if (node.value("type", std::string()) == "Sequence" && node.contains(list_key) && node[list_key].is_array())
          for (const auto& x : node[list_key]) out.push_back(x);
        else
          out.push_back(node);
        return out;
      };
      bool prepend = false, metaspace = false;
      std::string scheme = "always";
      for (const auto& n : flatten(j.value("normalizer", nlohmann::json()), "normalizers"))
        if (n.value("type", std::string()) == "Prepend") prepend = true;
      for (const auto& p : flatten(j.value("pre_tokenizer", nlohmann::json()), "pretokenizers")) {
        if (p.value("type", std::string()) != "Metaspace") continue;
        metaspace = true;
        if (p.contains("prepend_scheme") && p["prepend_scheme"].is_string()) scheme = p["prepend_scheme"].get<std::string>();
        else if (p.contains("add_prefix_space") && p["add_prefix_space"].is_boolean())
          scheme = p["add_prefix_space"].get<bool>() ? "always" : "never";
      }
      if (prepend) {
        t.legacy_ = true;
        t.add_prefix_space_ = true;
        t.hf_metaspace_ = false;  // Prepend is unconditional
      } else if (metaspace) {
        t.add_prefix_space_ = scheme != "never";
        t.legacy_ = scheme == "always";
        t.hf_metaspace_ = true;  // Metaspace skips the prefix when the text starts with a space
      } else {
        t.add_prefix_space_ = false;
      }
    }
  }
  // Special token names resolve to ids; they are split out of the text and count as special.
  auto resolve = [&](const char* key, int32_t* slot) {
    auto it = special_names.find(key);
    if (it == special_names.end()) return;
    const int32_t id = t.token_to_id(it->second);
    if (id < 0) {
      if (std::string(key) == "pad_token") return;  // a pad name with no id: no padding token
      fail(dir, ": ", key, " '", it->second, "' is neither a piece of tokenizer.model nor an added token");
    }
    *slot = id;
    if (!t.added_by_content_.count(it->second)) t.add_token_full({it->second, id, true});
    else t.added_[t.added_by_content_[it->second]].special = true;
  };
  resolve("bos_token", &t.bos_);
  resolve("eos_token", &t.eos_);
  resolve("unk_token", &t.unk_);
  resolve("pad_token", &t.pad_);
  for (const auto& c : additional_special) {
    auto it = t.added_by_content_.find(c);
    if (it != t.added_by_content_.end()) t.added_[it->second].special = true;
  }
  return t;
}

void Tokenizer::add_token_full(const AddedToken& a) {
  if (a.content.empty()) fail(source_, ": added token with id ", a.id, " has empty content");
  if (a.id < 0) fail(source_, ": added token '", a.content, "' has negative id ", a.id);
  auto it = added_by_content_.find(a.content);
  if (it != added_by_content_.end()) {
    AddedToken& old = added_[it->second];
    if (old.id != a.id)
      fail(source_, ": added token '", a.content, "' has id ", a.id, " here and ", old.id,
           " elsewhere; expected one id per token");
    old = a;
  } else {
    auto byid = added_by_id_.find(a.id);
    if (byid != added_by_id_.end())
      fail(source_, ": id ", a.id, " is given to both '", added_[byid->second].content, "' and '", a.content,
           "'; expected one token per id");
    added_by_content_[a.content] = added_.size();
    added_by_id_[a.id] = added_.size();
    added_.push_back(a);
  }
  auto s = std::find_if(splitters_.begin(), splitters_.end(), [&](const auto& p) { return p.first == a.content; });
  if (s != splitters_.end()) s->second = a.id;
  else splitters_.emplace_back(a.content, a.id);
  std::stable_sort(splitters_.begin(), splitters_.end(),
                   [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
}

void Tokenizer::add_token(const std::string& content, int32_t id, bool special) {
  add_token_full({content, id, special});
}

// ---- encode / decode -------------------------------------------------------------------------

std::vector<int32_t> Tokenizer::encode_piece(const std::string& text, bool dummy_prefix) const {
  std::vector<int32_t> out;
  sp_encode(text, dummy_prefix, &out);
  return out;
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && add_bos_token_ && bos_ >= 0) out.push_back(bos_);
  // Split on added/special tokens: leftmost, then longest match.
  struct Seg {
    size_t begin, end;
    int32_t id;  // -1: text
  };
  std::vector<Seg> segs;
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& s : splitters_) {
      if (text.compare(pos, s.first.size(), s.first) == 0) {
        hit = &s;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > start) segs.push_back({start, pos, -1});
    segs.push_back({pos, pos + hit->first.size(), hit->second});
    pos += hit->first.size();
    start = pos;
  }
  if (start < text.size()) segs.push_back({start, text.size(), -1});
  // lstrip / rstrip of added tokens eat the whitespace next to them.
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].id < 0) continue;
    auto a = added_by_id_.find(segs[i].id);
    if (a == added_by_id_.end()) continue;
    const AddedToken& tok = added_[a->second];
    if (tok.rstrip && i + 1 < segs.size() && segs[i + 1].id < 0)
      while (segs[i + 1].begin < segs[i + 1].end && is_ws(text[segs[i + 1].begin])) ++segs[i + 1].begin;
    if (tok.lstrip && i > 0 && segs[i - 1].id < 0)
      while (segs[i - 1].end > segs[i - 1].begin && is_ws(text[segs[i - 1].end - 1])) --segs[i - 1].end;
  }
  for (const Seg& s : segs) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    if (s.end <= s.begin) continue;  // empty pieces give no tokens
    const std::string piece = text.substr(s.begin, s.end - s.begin);
    // legacy: every piece (HF Metaspace prepend_scheme "always" / SentencePiece per piece);
    // non-legacy: only the piece at the start of the text (prepend_scheme "first").
    bool prefix = add_prefix_space_ && (legacy_ || s.begin == 0);
    if (hf_metaspace_ && (piece[0] == ' ' || piece.compare(0, kSpaceLen, kSpace) == 0)) prefix = false;
    sp_encode(piece, prefix, &out);
  }
  if (add_eos_token_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const detail::SpModel& m = *model_;
  std::string out;
  std::string bytes;  // pending byte-fallback bytes
  auto flush = [&]() {
    if (!bytes.empty()) {
      out += sanitize_utf8(bytes);
      bytes.clear();
    }
  };
  const int32_t n = vocab_size();
  for (int32_t id : ids) {
    // Models pad their vocabulary (llava-hf: 32064 rows for 32001 tokens); ids past the
    // tokenizer are not text. HF's decode drops them too.
    if (id < 0 || id >= n) continue;
    if (skip_special && is_special(id)) continue;
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) {
      flush();
      out += added_[a->second].content;
      continue;
    }
    if (id >= static_cast<int32_t>(m.pieces.size())) continue;  // a gap in the added ids
    const auto& p = m.pieces[id];
    if (p.type == kByte) {
      unsigned v = 0;
      std::sscanf(p.piece.c_str() + 3, "%2X", &v);
      bytes += static_cast<char>(v);
      continue;
    }
    flush();
    if (p.type == kControl || p.type == kUnknown) {
      out += p.piece;
      continue;
    }
    const std::string& s = p.piece;
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, kSpaceLen, kSpace) == 0) {
        out += ' ';
        i += kSpaceLen;
      } else {
        out += s[i++];
      }
    }
  }
  flush();
  if (add_prefix_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

// ---- accessors -------------------------------------------------------------------------------

int32_t Tokenizer::bos_id() const { return bos_; }
int32_t Tokenizer::eos_id() const { return eos_; }
int32_t Tokenizer::unk_id() const { return unk_; }
int32_t Tokenizer::pad_id() const { return pad_; }

int32_t Tokenizer::token_to_id(const std::string& piece) const {
  auto a = added_by_content_.find(piece);
  if (a != added_by_content_.end()) return added_[a->second].id;
  return model_->find(piece);
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  auto a = added_by_id_.find(id);
  if (a != added_by_id_.end()) return added_[a->second].content;
  if (id < 0 || id >= static_cast<int32_t>(model_->pieces.size()))
    fail(source_, ": token id ", id, " is out of range; expected an id in [0, ", vocab_size(), ")");
  return model_->pieces[id].piece;
}

int32_t Tokenizer::vocab_size() const {
  int32_t n = static_cast<int32_t>(model_->pieces.size());
  for (const auto& a : added_) n = std::max(n, a.id + 1);
  return n;
}

bool Tokenizer::is_special(int32_t id) const {
  auto a = added_by_id_.find(id);
  if (a != added_by_id_.end()) return added_[a->second].special;
  if (id < 0 || id >= static_cast<int32_t>(model_->pieces.size())) return false;
  const int t = model_->pieces[id].type;
  return t == kControl || t == kUnknown;
}

void Tokenizer::set_legacy(bool legacy) { legacy_ = legacy; }
bool Tokenizer::legacy() const { return legacy_; }
void Tokenizer::set_add_prefix_space(bool on) { add_prefix_space_ = on; }
bool Tokenizer::add_prefix_space() const { return add_prefix_space_; }
void Tokenizer::set_hf_metaspace(bool on) { hf_metaspace_ = on; }
bool Tokenizer::hf_metaspace() const { return hf_metaspace_; }
void Tokenizer::set_add_bos_token(bool on) { add_bos_token_ = on; }
void Tokenizer::set_add_eos_token(bool on) { add_eos_token_ = on; }

}  // namespace stic
