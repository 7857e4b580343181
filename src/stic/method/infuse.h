// stic/method/infuse.h — `stic infuse`: STIC stage 2's description infusion
// (reference/stic-method.md section 4), also the question format of describe-and-respond.
//
// The first human turn of each LLaVA record gets its image's description by the rule of
// text/stic_prompts.h, infuse_description ("<image>\nImage description:\n{desc}\n\n{question}");
// answers and later turns are unchanged.
// Descriptions are matched to records by record id (never by position) and, where both name an
// image, checked against the record's image.
//
// Input: a JSON list (LLaVA's layout) or JSONL; the output keeps the layout, the order of the
// records and of their fields, and every field. Descriptions: `stic describe`'s JSONL
// {"id", "image", "prompt", "description", "finish_reason"} (lines {"id", "error"} — a describe
// that failed on its image — are counted, not used).
//
// Never fatal per record: a record without a description, with a description of another image,
// without conversations, or whose first turn is not the human's passes through unchanged and is
// counted (with its record number and id in the summary); a description line that is not JSON,
// has no id, repeats an id, or names no record is counted and named. The output is written
// atomically (all or nothing).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stic {

struct InfuseOptions {
  std::string data, descriptions, out;
  std::string summary;  // where the summary JSON goes ("" = OUT.summary.json)
};

struct InfuseResult {
  int64_t records = 0;                // records in the data
  int64_t infused = 0;                // records whose first turn got a description
  int64_t without_description = 0;    // records with no (usable) description: unchanged
  int64_t describe_failed = 0;        // of those, ids whose describe line is an error record
  int64_t bad_records = 0;            // no conversations / first turn not human / not an object: unchanged
  int64_t image_mismatch = 0;         // a description of another image: unchanged
  int64_t unused_descriptions = 0;    // descriptions whose id is in no record
  int64_t bad_description_lines = 0;  // not JSON, no id, no description, or a repeated id
  nlohmann::json summary;             // all of the above, with the first ids of each kind
};

// Throws stic::Error only when a file cannot be read at all (or the output cannot be written).
InfuseResult run_infuse(const InfuseOptions& o);

}  // namespace stic
