// stic/io/pref_records.cpp — see pref_records.h.
#include "stic/io/pref_records.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace stic {

namespace {
bool is_message_list(const nlohmann::json& m) {
  if (!m.is_array() || m.size() < 2) return false;
  for (auto& x : m)
    if (!x.is_object() || !x.contains("role") || !x.contains("content") || !x["content"].is_string()) return false;
  return true;
}
}  // namespace

std::string pref_record_kind(const nlohmann::json& j) {
  if (j.contains("kind")) return j["kind"].get<std::string>();
  return j.value("hallu_prompt", std::string()).empty() ? "corrupted" : "bad_prompt";
}

std::string pref_record_id(const nlohmann::json& j) {
  if (j.contains("id")) return j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
  return j.value("image", std::string());
}

std::vector<PrefRecord> read_pref_records(const std::string& path, const PrefBadFn& on_bad_at) {
  std::vector<PrefRecord> out;
  size_t index = 0;
  auto on_bad = [&](const std::string& where, const std::string& why) { on_bad_at(index, where, why); };
  auto take = [&](nlohmann::json j, const std::string& where) {
    if (!j.is_object()) return on_bad(where, "expected a JSON object");
    if (!j.contains("chosen") || !is_message_list(j["chosen"]))
      return on_bad(where, "\"chosen\" must be a list of {role, content} messages (user, assistant)");
    if (!j.contains("rejected") || !is_message_list(j["rejected"]))
      return on_bad(where, "\"rejected\" must be a list of {role, content} messages (user, assistant)");
    for (const char* k : {"image", "kind", "hallu_prompt"})
      if (j.contains(k) && !j[k].is_string()) return on_bad(where, str_cat("\"", k, "\" must be a string"));
    if (j.contains("id") && !j["id"].is_string() && !j["id"].is_number_integer())
      return on_bad(where, "\"id\" must be a string or an integer");
    out.push_back({std::move(j), where, static_cast<int64_t>(index)});
  };
  read_json_records(
      path, "a list of preference pairs",
      [&](size_t i, const std::string& where, nlohmann::json& j) {
        index = i;
        take(std::move(j), str_cat(path, ": ", where));
      },
      [&](size_t i, const std::string& where, const std::string&) {
        index = i;
        on_bad(str_cat(path, ": ", where), "not valid JSON");
      });
  return out;
}

int64_t convert_pref_files(const std::vector<std::string>& inputs, const std::string& out) {
  if (inputs.empty()) fail("convert: no input files");
  std::vector<nlohmann::json> all;
  std::map<std::string, std::string> seen;  // id -> where
  int bad = 0;
  for (const auto& in : inputs) {
    for (auto& r : read_pref_records(in, [&](size_t, const std::string& where, const std::string& why) {
           ++bad;
           std::fprintf(stderr, "stic convert: %s: %s\n", where.c_str(), why.c_str());
         })) {
      const std::string id = pref_record_id(r.j);
      auto [it, fresh] = seen.emplace(id, r.where);
      if (!fresh) fail("convert: duplicate id '", id, "' in ", r.where, " (first in ", it->second, ")");
      all.push_back(std::move(r.j));
    }
  }
  if (bad) fail("convert: ", bad, " malformed record(s) (see above); nothing written");
  std::string text;
  if (ends_with(out, ".json")) {
    text = nlohmann::json(all).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    for (auto& j : all) text += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  write_file_atomic(out, text);
  return static_cast<int64_t>(all.size());
}

}  // namespace stic
