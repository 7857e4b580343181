// stic/text/tokenizer.h — SentencePiece-BPE tokenizer with HF-style added/special tokens.
//
// Reads a SentencePiece `tokenizer.model` (ModelProto protobuf, parsed here by hand: Debian's
// libsentencepiece cannot share a process with libtorch) and encodes exactly as SentencePiece's
// BPE model does: identity normalisation (spaces -> U+2581 "▁", optional dummy prefix, optional
// removal of extra whitespace), user-defined pieces matched whole, then repeated merging of the
// adjacent pair whose merged piece scores highest (ties: leftmost), and byte fallback (<0xNN>)
// or <unk> for characters outside the vocabulary.
//
// On top of that, the Hugging Face layer that llava-hf checkpoints use (LlamaTokenizer /
// LlamaTokenizerFast): BOS prepended (tokenizer_config.json `add_bos_token`, default true), EOS
// appended only with `add_eos_token`, and the text first split on added tokens (longest match
// first; <s>, </s>, <unk> and e.g. <image> become their ids). The text between added tokens is
// encoded piece by piece; whether a piece gets the "▁" dummy prefix depends on `legacy`:
//   legacy = true  (HF's default when the config does not say): every piece gets it, as if it
//                  were encoded alone ("<image>\nHi" -> <image>, ▁, <0x0A>, Hi ...).
//   legacy = false: only text at the very start of the input gets it ("<image>\nHi" ->
//                  <image>, <0x0A>, Hi ...).
// In HF mode (from_dir; `hf_metaspace`), a piece that already starts with a space gets no
// prefix (HF's Metaspace pre-tokenizer: " Hi" -> ▁Hi, as transformers 5.x encodes it), while
// SentencePiece itself always prepends (" Hi" -> ▁, ▁Hi). `add_prefix_space = false`
// (tokenizer_config.json) turns the prefix off everywhere.
// from_model_file() gives SentencePiece semantics (legacy, SentencePiece's prefix rule, prefix =
// the model's add_dummy_prefix): what `spm_encode` produces, plus the BOS and the splitting of
// <s>, </s>, <unk> written in the text. Checked against transformers 5.x's ids in
// tests/fixtures/parity/tokenizer_ids.json (both legacy modes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stic {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool lstrip = false;  // HF AddedToken: eats whitespace on its left / right
  bool rstrip = false;
};

namespace detail {
struct SpModel;  // the parsed, immutable tokenizer.model (shared between copies)
}

class Tokenizer {
 public:
  // Reads DIR/tokenizer.model plus, when present, tokenizer_config.json, added_tokens.json,
  // special_tokens_map.json, tokenizer.json (only its added_tokens). Throws stic::Error.
  static Tokenizer from_dir(const std::string& dir);
  static Tokenizer from_model_file(const std::string& path);  // just the .model

  std::vector<int32_t> encode(const std::string& text, bool add_bos = true) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;  // -1 if none
  int32_t token_to_id(const std::string& piece) const;  // -1 if unknown (added tokens included)
  std::string id_to_piece(int32_t id) const;            // throws stic::Error when out of range
  int32_t vocab_size() const;  // base pieces + added tokens (max id + 1)
  void add_token(const std::string& content, int32_t id, bool special);  // e.g. "<image>"
  void set_legacy(bool legacy);
  bool legacy() const;

  // Further HF options (read from tokenizer_config.json by from_dir).
  void set_add_prefix_space(bool on);
  // true: HF's Metaspace rule (no prefix before text that starts with a space); false:
  // SentencePiece's (always). from_dir sets true, from_model_file false.
  void set_hf_metaspace(bool on);
  bool hf_metaspace() const;
  bool add_prefix_space() const;
  void set_add_bos_token(bool on);  // config's add_bos_token; encode(add_bos) needs both
  void set_add_eos_token(bool on);
  bool is_special(int32_t id) const;  // control/unknown pieces and special added tokens
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  // The SentencePiece encoding of one text piece, no BOS, no added-token splitting.
  std::vector<int32_t> encode_piece(const std::string& text, bool dummy_prefix) const;

 private:
  Tokenizer() = default;
  void add_token_full(const AddedToken& t);
  void sp_encode(const std::string& text, bool dummy_prefix, std::vector<int32_t>* out) const;

  std::shared_ptr<const detail::SpModel> model_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, size_t> added_by_content_;  // -> index in added_
  std::unordered_map<int32_t, size_t> added_by_id_;
  // Strings the input is split on: added tokens plus the special pieces (<s>, </s>, <unk>).
  std::vector<std::pair<std::string, int32_t>> splitters_;  // sorted longest first
  bool legacy_ = true;
  bool add_prefix_space_ = true;
  bool hf_metaspace_ = false;
  bool add_bos_token_ = true;
  bool add_eos_token_ = false;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
  std::string source_;  // file or folder it came from (for messages)
};

}  // namespace stic
