// Tests of stic::Tokenizer against SentencePiece's own encoder (spm_encode outputs committed by
// tools/make-tokenizer-fixtures.sh), the LLaMA vocabulary with llama-tokenizer-js's expected ids,
// HF's added-token splitting in both legacy modes, decoding, and bad input.
#include <filesystem>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/text/tokenizer.h"
#include "stic/util/error.h"

namespace {

using stic::Tokenizer;
using Ids = std::vector<int32_t>;

const std::string kFx = std::string(STIC_SOURCE_DIR) + "/tests/fixtures/tokenizer";
const std::string kTmp = std::string(STIC_BINARY_DIR) + "/tokenizer_test_tmp";

struct Case {
  std::string text;
  Ids ids;
};

std::vector<Case> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f) << path;
  std::vector<Case> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back({j["text"].get<std::string>(), j["ids"].get<Ids>()});
  }
  return out;
}

const Case& find_case(const std::vector<Case>& cases, const std::string& text) {
  for (const auto& c : cases)
    if (c.text == text) return c;
  ADD_FAILURE() << "no fixture case for '" << text << "'";
  static Case none;
  return none;
}

bool has_special_text(const std::string& s) {
  return s.find("<s>") != std::string::npos || s.find("</s>") != std::string::npos ||
         s.find("<unk>") != std::string::npos;
}

Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
  ASSERT_TRUE(f.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void make_dir(const std::string& path) { std::filesystem::create_directories(path); }

// ---- a tiny protobuf writer (to build test models) ------------------------------------------

void put_varint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}
void put_int(std::string* s, int field, int64_t v) {
  put_varint(s, static_cast<uint64_t>(field) << 3);
  put_varint(s, static_cast<uint64_t>(v));
}
void put_bytes(std::string* s, int field, const std::string& b) {
  put_varint(s, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(s, b.size());
  *s += b;
}
void put_float(std::string* s, int field, float f) {
  put_varint(s, (static_cast<uint64_t>(field) << 3) | 5);
  char b[4];
  std::memcpy(b, &f, 4);
  s->append(b, 4);
}

struct PieceSpec {
  std::string piece;
  float score;
  int type;
};

std::string model_proto(const std::vector<PieceSpec>& pieces, int model_type, bool byte_fallback) {
  std::string out;
  for (const auto& p : pieces) {
    std::string m;
    put_bytes(&m, 1, p.piece);
    put_float(&m, 2, p.score);
    if (p.type != 1) put_int(&m, 3, p.type);
    put_bytes(&out, 1, m);
  }
  std::string trainer, norm;
  put_int(&trainer, 3, model_type);
  put_int(&trainer, 4, static_cast<int64_t>(pieces.size()));
  put_int(&trainer, 25, 1);
  put_int(&trainer, 35, byte_fallback ? 1 : 0);
  put_int(&trainer, 40, 0);
  put_int(&trainer, 41, 1);
  put_int(&trainer, 42, 2);
  put_int(&trainer, 43, -1);
  put_bytes(&norm, 1, "identity");
  put_int(&norm, 3, 1);
  put_int(&norm, 4, 0);
  put_int(&norm, 5, 1);
  put_bytes(&out, 2, trainer);
  put_bytes(&out, 3, norm);
  return out;
}

// The LLaMA tokenizer.model rebuilt from llama-tokenizer-js's vocabulary, with LLaMA's types and
// scores (the rules of tools/sp_model_from_vocab.py).
const std::string& llama_model_path() {
  static const std::string path = [] {
    make_dir(kTmp);
    const std::string text = read_file(kFx + "/llama_pieces.txt");
    std::vector<PieceSpec> pieces;
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      std::string p = text.substr(start, nl - start);
      start = nl + 1;
      const int id = static_cast<int>(pieces.size());
      PieceSpec s{p, static_cast<float>(-(id - 259)), 1};
      bool all_space = p.size() >= 6 && p.size() % 3 == 0;
      for (size_t i = 0; all_space && i < p.size(); i += 3) all_space = p.compare(i, 3, "\xE2\x96\x81") == 0;
      if (p == "<unk>") s = {p, 0.f, 2};
      else if (p == "<s>" || p == "</s>") s = {p, 0.f, 3};
      else if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') s = {p, 0.f, 6};
      else if (all_space) s.score = -1e9f;
      pieces.push_back(s);
    }
    EXPECT_EQ(pieces.size(), 32000u);
    const std::string out = kTmp + "/llama.model";
    write_file(out, model_proto(pieces, 2, true));
    return out;
  }();
  return path;
}

// ---- SentencePiece parity --------------------------------------------------------------------

TEST(TokenizerSpm, TinyModelMatchesSpmEncode) {
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  const auto cases = read_jsonl(kFx + "/spm_expected.jsonl");
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    EXPECT_EQ(tok.encode_piece(c.text, /*dummy_prefix=*/true), c.ids) << "text: '" << c.text << "'";
    if (has_special_text(c.text)) continue;  // encode() splits <s> etc. out; spm_encode does not
    EXPECT_EQ(tok.encode(c.text, /*add_bos=*/false), c.ids) << "text: '" << c.text << "'";
    EXPECT_EQ(tok.encode(c.text), cat({{1}, c.ids})) << "text: '" << c.text << "'";
  }
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.vocab_size(), 1000);
  EXPECT_TRUE(tok.encode("", false).empty());
  EXPECT_EQ(tok.encode(""), Ids{1});
}

TEST(TokenizerSpm, NoDummyPrefixMatchesSpmEncode) {
  // tiny.model with add_dummy_prefix off, as spm_encode ran it: the encoder's prefix switch.
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  for (const auto& c : read_jsonl(kFx + "/spm_noprefix_expected.jsonl"))
    EXPECT_EQ(tok.encode_piece(c.text, /*dummy_prefix=*/false), c.ids) << "text: '" << c.text << "'";
}

TEST(TokenizerSpm, NoByteFallbackModelMatchesSpmEncode) {
  // Trained by the fixture script: <unk> runs, remove_extra_whitespaces, user-defined pieces.
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny_nobf.model");
  const auto cases = read_jsonl(kFx + "/nobf_expected.jsonl");
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) EXPECT_EQ(tok.encode(c.text, false), c.ids) << "text: '" << c.text << "'";
}

TEST(TokenizerLlama, LlamaTokenizerJsCases) {
  const Tokenizer tok = Tokenizer::from_model_file(llama_model_path());
  std::ifstream f(kFx + "/llama_cases.json");
  const auto cases = nlohmann::json::parse(f);
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const Ids ids = c["ids"].get<Ids>();
    EXPECT_EQ(tok.encode(text), ids) << "text: '" << text << "'";
    EXPECT_EQ(tok.decode(ids), text) << "ids of '" << text << "'";
  }
  // Spot checks straight from llama-tokenizer-js's test suite.
  EXPECT_EQ(tok.encode("grabbed"), (Ids{1, 2646, 1327, 287}));
  EXPECT_EQ(tok.encode(" grabbed"), (Ids{1, 29871, 2646, 1327, 287}));
  EXPECT_EQ(tok.encode("\n"), (Ids{1, 29871, 13}));
  EXPECT_EQ(tok.decode({1, 2646, 1327, 287}, /*skip_special=*/false), "<s> grabbed");
}

TEST(TokenizerLlama, MatchesSpmEncodeOnMoreText) {
  const Tokenizer tok = Tokenizer::from_model_file(llama_model_path());
  const auto cases = read_jsonl(kFx + "/llama_spm_expected.jsonl");
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    EXPECT_EQ(tok.encode_piece(c.text, true), c.ids) << "text: '" << c.text << "'";
    if (!has_special_text(c.text)) {
      EXPECT_EQ(tok.encode(c.text, false), c.ids) << "text: '" << c.text << "'";
    }
  }
}

// ---- HF semantics: added tokens, legacy ------------------------------------------------------

TEST(TokenizerAdded, ImageTokenLegacy) {
  // SentencePiece prefix rule (from_model_file): each text piece is encoded as if alone.
  Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  tok.add_token("<image>", 1000, true);
  EXPECT_TRUE(tok.legacy());
  EXPECT_FALSE(tok.hf_metaspace());
  EXPECT_EQ(tok.vocab_size(), 1001);
  EXPECT_EQ(tok.token_to_id("<image>"), 1000);
  EXPECT_EQ(tok.id_to_piece(1000), "<image>");
  const auto spm = read_jsonl(kFx + "/spm_expected.jsonl");
  const Ids hello = find_case(spm, "Hello world").ids;
  const Ids year = find_case(spm, "The year 2024 had 366 days.").ids;
  const Ids lead = find_case(spm, " leading space").ids;
  EXPECT_EQ(tok.encode("Hello world<image>The year 2024 had 366 days."), cat({{1}, hello, {1000}, year}));
  EXPECT_EQ(tok.encode("<image>Hello world"), cat({{1, 1000}, hello}));
  EXPECT_EQ(tok.encode("Hello world<image>"), cat({{1}, hello, {1000}}));
  EXPECT_EQ(tok.encode("<image><image>"), (Ids{1, 1000, 1000}));
  EXPECT_EQ(tok.encode("<image> leading space"), cat({{1, 1000}, lead}));
  // <s>, </s>, <unk> written in the text are their ids.
  EXPECT_EQ(tok.encode("</s> leading space<unk><s>", false), cat({{2}, lead, {0, 1}}));
  // HF's Metaspace rule: a piece starting with a space gets no extra "▁".
  tok.set_hf_metaspace(true);
  const auto bare = read_jsonl(kFx + "/spm_noprefix_expected.jsonl");
  EXPECT_EQ(tok.encode("<image> leading space"), cat({{1, 1000}, find_case(bare, " leading space").ids}));
  EXPECT_EQ(tok.encode("<image>Hello world"), cat({{1, 1000}, hello}));
}

TEST(TokenizerAdded, ImageTokenNonLegacy) {
  Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  tok.add_token("<image>", 1000, true);
  tok.set_legacy(false);
  EXPECT_FALSE(tok.legacy());
  const auto spm = read_jsonl(kFx + "/spm_expected.jsonl");
  const auto bare = read_jsonl(kFx + "/spm_noprefix_expected.jsonl");
  const Ids hello = find_case(spm, "Hello world").ids;
  // Only the start of the text gets the dummy prefix; text after an added token does not.
  EXPECT_EQ(tok.encode("Hello world<image>The year 2024 had 366 days."),
            cat({{1}, hello, {1000}, find_case(bare, "The year 2024 had 366 days.").ids}));
  EXPECT_EQ(tok.encode("<image>Hello world"), cat({{1, 1000}, find_case(bare, "Hello world").ids}));
  EXPECT_EQ(tok.encode("<image> leading space"), cat({{1, 1000}, find_case(bare, " leading space").ids}));
  EXPECT_EQ(tok.encode("</s> leading space", false), cat({{2}, find_case(bare, " leading space").ids}));
  EXPECT_EQ(tok.encode("Hello world", false), hello);
  EXPECT_EQ(tok.encode(" leading space", false), find_case(spm, " leading space").ids);
  tok.set_hf_metaspace(true);  // HF: no "▁" before text that starts with a space
  EXPECT_EQ(tok.encode(" leading space", false), find_case(bare, " leading space").ids);
}

TEST(TokenizerAdded, LlamaImageNewline) {
  // The LLaVA prompt shape "<image>\n...": legacy gives "▁" + <0x0A>, non-legacy just <0x0A>.
  Tokenizer tok = Tokenizer::from_model_file(llama_model_path());
  tok.add_token("<image>", 32000, true);
  tok.set_hf_metaspace(true);
  const int32_t gra = tok.token_to_id("gra");  // 2646 is "▁gra"
  ASSERT_GT(gra, 0);
  EXPECT_EQ(tok.encode("<image>\n"), (Ids{1, 32000, 29871, 13}));
  EXPECT_EQ(tok.encode("<image>\ngrabbed"), (Ids{1, 32000, 29871, 13, gra, 1327, 287}));
  EXPECT_EQ(tok.encode("<image> grabbed"), (Ids{1, 32000, 2646, 1327, 287}));
  EXPECT_EQ(tok.encode("<image>grabbed"), (Ids{1, 32000, 2646, 1327, 287}));
  tok.set_legacy(false);
  EXPECT_EQ(tok.encode("<image>\n"), (Ids{1, 32000, 13}));
  EXPECT_EQ(tok.encode("<image>\ngrabbed"), (Ids{1, 32000, 13, gra, 1327, 287}));
  EXPECT_EQ(tok.encode("<image> grabbed"), (Ids{1, 32000, 2646, 1327, 287}));
  EXPECT_EQ(tok.encode("<image>grabbed"), (Ids{1, 32000, gra, 1327, 287}));
  EXPECT_EQ(tok.encode("grabbed<image>"), (Ids{1, 2646, 1327, 287, 32000}));
  EXPECT_EQ(tok.decode({1, 32000, 13, gra, 1327, 287}), "\ngrabbed");
  EXPECT_EQ(tok.decode({1, 32000, 13, gra, 1327, 287}, false), "<s><image>\ngrabbed");
}

TEST(TokenizerAdded, FromDirReadsHfConfigs) {
  const std::string dir = kTmp + "/hfdir";
  make_dir(dir);
  write_file(dir + "/tokenizer.model", read_file(kFx + "/tiny.model"));
  write_file(dir + "/tokenizer_config.json", R"({
    "add_bos_token": true, "add_eos_token": false, "legacy": false,
    "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
    "added_tokens_decoder": {
      "0": {"content": "<unk>", "special": true}, "1": {"content": "<s>", "special": true},
      "2": {"content": "</s>", "special": true},
      "1000": {"content": "<image>", "special": true, "lstrip": false, "rstrip": false}}})");
  write_file(dir + "/tokenizer.json",
             R"({"added_tokens": [{"id": 1001, "content": "<pad>", "special": true,
                 "lstrip": false, "rstrip": false, "normalized": false, "single_word": false}],
                 "model": {"type": "BPE"}})");
  Tokenizer tok = Tokenizer::from_dir(dir);
  EXPECT_FALSE(tok.legacy());
  EXPECT_EQ(tok.token_to_id("<image>"), 1000);
  EXPECT_EQ(tok.pad_id(), 1001);
  EXPECT_EQ(tok.vocab_size(), 1002);
  EXPECT_TRUE(tok.is_special(1000));
  const auto bare = read_jsonl(kFx + "/spm_noprefix_expected.jsonl");
  EXPECT_EQ(tok.encode("<image>Hello world"), cat({{1, 1000}, find_case(bare, "Hello world").ids}));

  // added_tokens.json alone; legacy absent -> true.
  const std::string dir2 = kTmp + "/hfdir2";
  make_dir(dir2);
  write_file(dir2 + "/tokenizer.model", read_file(kFx + "/tiny.model"));
  write_file(dir2 + "/added_tokens.json", R"({"<image>": 1000})");
  write_file(dir2 + "/tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true})");
  Tokenizer tok2 = Tokenizer::from_dir(dir2);
  EXPECT_TRUE(tok2.legacy());
  const Ids hello = find_case(read_jsonl(kFx + "/spm_expected.jsonl"), "Hello world").ids;
  EXPECT_EQ(tok2.encode("<image>Hello world"), cat({{1000}, hello, {2}}));
  // added_tokens.json does not say <image> is special: decoding keeps it.
  EXPECT_FALSE(tok2.is_special(1000));
  EXPECT_EQ(tok2.decode(cat({{1000}, hello, {2}})), "<image> Hello world");
}

TEST(TokenizerAdded, ParityFixtureFromHf) {
  const std::string path = std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity/tokenizer_ids.json";
  std::ifstream f(path);
  if (!f) GTEST_SKIP() << "no HF parity fixture yet: " << path;
  const auto j = nlohmann::json::parse(f);
  const auto& cases = j.is_array() ? j : j.at("cases");
  ASSERT_FALSE(cases.empty());
  // The folder HF loaded: tiny.model + a llava-hf style tokenizer_config.json with <image>.
  for (bool legacy : {true, false}) {
    const std::string dir = kTmp + (legacy ? "/parity_legacy" : "/parity_nonlegacy");
    make_dir(dir);
    write_file(dir + "/tokenizer.model", read_file(kFx + "/tiny.model"));
    nlohmann::json cfg = {{"tokenizer_class", "LlamaTokenizer"}, {"add_bos_token", true},
                          {"add_eos_token", false}, {"bos_token", "<s>"}, {"eos_token", "</s>"},
                          {"unk_token", "<unk>"}, {"pad_token", nullptr}, {"legacy", legacy}};
    cfg["added_tokens_decoder"]["1000"] = {{"content", "<image>"}, {"special", true}};
    write_file(dir + "/tokenizer_config.json", cfg.dump());
    const Tokenizer tok = Tokenizer::from_dir(dir);
    ASSERT_EQ(tok.legacy(), legacy);
    int n = 0;
    for (const auto& c : cases) {
      if (c.value("legacy", true) != legacy) continue;
      ++n;
      const std::string text = c.at("text").get<std::string>();
      const Ids ids = c.at("ids").get<Ids>();
      EXPECT_EQ(tok.encode(text), ids) << "text: '" << text << "' legacy=" << legacy;
      if (c.contains("decoded")) {
        EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << "ids of '" << text << "' legacy=" << legacy;
      }
    }
    EXPECT_GE(n, 10) << "cases with legacy=" << legacy;
  }
}

// ---- decode ----------------------------------------------------------------------------------

TEST(TokenizerDecode, RoundTrip) {
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  for (const auto& c : read_jsonl(kFx + "/spm_expected.jsonl")) {
    if (c.text.find("\xE2\x96\x81") != std::string::npos) continue;  // a literal ▁ decodes as a space
    if (has_special_text(c.text)) continue;  // specials are split out, then skipped
    EXPECT_EQ(tok.decode(c.ids), c.text);
    EXPECT_EQ(tok.decode(tok.encode(c.text)), c.text);
  }
}

TEST(TokenizerDecode, SpecialsAndBytes) {
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  const Ids hello = tok.encode("Hello world", false);
  EXPECT_EQ(tok.decode(cat({{1}, hello, {2}})), "Hello world");
  EXPECT_EQ(tok.decode(cat({{1}, hello, {2}}), /*skip_special=*/false), "<s> Hello world</s>");
  // Byte tokens are reassembled into UTF-8; a broken sequence becomes U+FFFD.
  const int32_t f0 = tok.token_to_id("<0xF0>"), x9f = tok.token_to_id("<0x9F>");
  const int32_t xa6 = tok.token_to_id("<0xA6>"), x99 = tok.token_to_id("<0x99>");
  EXPECT_EQ(tok.decode({f0, x9f, xa6, x99}), "\xF0\x9F\xA6\x99");  // 🦙
  EXPECT_EQ(tok.decode({f0, x9f}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // ids past the tokenizer (padded model vocabularies) are not text: dropped, as HF does
  EXPECT_EQ(tok.decode({5000}), "");
  EXPECT_EQ(tok.token_to_id("no such piece"), -1);
  EXPECT_THROW(tok.id_to_piece(-3), stic::Error);
}

TEST(TokenizerDecode, InvalidUtf8InputIsReplaced) {
  // SentencePiece normalises a malformed byte to U+FFFD before encoding.
  const Tokenizer tok = Tokenizer::from_model_file(kFx + "/tiny.model");
  EXPECT_EQ(tok.encode("a\xFF" "b", false), tok.encode("a\xEF\xBF\xBD" "b", false));
}

// ---- bad input -------------------------------------------------------------------------------

void expect_error_with(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected stic::Error mentioning '" << needle << "'";
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one-line message: " << e.what();
  }
}

TEST(TokenizerErrors, BadFiles) {
  make_dir(kTmp);
  const std::string missing = kTmp + "/no_such.model";
  expect_error_with([&] { Tokenizer::from_model_file(missing); }, missing);
  expect_error_with([&] { Tokenizer::from_dir(kTmp + "/no_such_dir"); }, kTmp + "/no_such_dir/tokenizer.model");

  const std::string model = read_file(kFx + "/tiny.model");
  for (size_t cut : {size_t(1), size_t(7), size_t(100), model.size() / 2, model.size() - 3}) {
    const std::string path = kTmp + "/truncated.model";
    write_file(path, model.substr(0, cut));
    expect_error_with([&] { Tokenizer::from_model_file(path); }, path);
  }
  const std::string garbage = kTmp + "/garbage.model";
  write_file(garbage, "this is not a sentencepiece model at all\n");
  expect_error_with([&] { Tokenizer::from_model_file(garbage); }, garbage);
  const std::string empty = kTmp + "/empty.model";
  write_file(empty, "");
  expect_error_with([&] { Tokenizer::from_model_file(empty); }, empty);

  const std::string unigram = kTmp + "/unigram.model";
  write_file(unigram, model_proto({{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"a", -1, 1}}, 1, false));
  expect_error_with([&] { Tokenizer::from_model_file(unigram); }, "UNIGRAM");

  const std::string dir = kTmp + "/badjson";
  make_dir(dir);
  write_file(dir + "/tokenizer.model", model);
  write_file(dir + "/tokenizer_config.json", "{\"legacy\": fals");
  expect_error_with([&] { Tokenizer::from_dir(dir); }, dir + "/tokenizer_config.json");
}

}  // namespace
