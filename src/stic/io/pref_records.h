// stic/io/pref_records.h — preference-pair files: reading (both layouts) and converting.
//
// Pair record (one JSON object; a file is JSONL or a JSON list, as the published
// stic-coco-preference-6k file):
//   {"id", "image", "image_corruption", "hallu_prompt",
//    "chosen": [{"role": "user", "content"}, {"role": "assistant", "content"}], "rejected": [...],
//    ... (stic's own fields: kind, corruption, prompts, sampling, per side info)}
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stic {

struct PrefRecord {
  nlohmann::json j;
  std::string where;  // "FILE: line N" or "FILE: element N"
  int64_t index = 0;  // the record's position in the file (0-based, blank lines not counted)
};
// on_bad(index, where, why) for a record left out
using PrefBadFn = std::function<void(size_t, const std::string&, const std::string&)>;
// Reads pairs from JSONL or a JSON list. A record that is not an object with "chosen" and
// "rejected" message lists, or whose "id" / "image" / "kind" / "hallu_prompt" is not a string,
// goes to `on_bad(index, where, why)` and is left out; a file that is neither JSONL nor a JSON list is a
// stic::Error.
std::vector<PrefRecord> read_pref_records(const std::string& path, const PrefBadFn& on_bad);
// The record's id: "id" if present, else "image".
std::string pref_record_id(const nlohmann::json& j);
// The record's kind: "kind" if present (bad_prompt, lowres, jitter), else from the released
// fields: "bad_prompt" with a hallucination prompt, "corrupted" without.
std::string pref_record_kind(const nlohmann::json& j);

// stic convert: merges `inputs` (JSONL or JSON lists, e.g. shard files) into `out`, as a JSON
// list when out ends in ".json", else JSONL. A duplicate id is a stic::Error naming both places.
// Returns the number of records written.
int64_t convert_pref_files(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace stic
