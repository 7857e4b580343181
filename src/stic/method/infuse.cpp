// stic/method/infuse.cpp — see infuse.h.
#include "stic/method/infuse.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "stic/text/stic_prompts.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps each record's field order

namespace stic {
namespace {

constexpr size_t kListed = 20;  // ids named per kind in the summary

std::string id_text(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }
std::string id_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Counts a kind of problem, names its first few instances in the summary and on stderr.
struct Tally {
  json summary = json::object();
  int printed = 0;
  void add(const std::string& kind, const json& what, const std::string& message) {
    json& k = summary[kind];
    if (k.is_null()) k = {{"count", 0}, {"first", json::array()}};
    k["count"] = k["count"].get<int64_t>() + 1;
    if (k["first"].size() < kListed) k["first"].push_back(what);
    if (printed++ < 10) std::fprintf(stderr, "stic infuse: %s\n", message.c_str());
  }
};

}  // namespace

InfuseResult run_infuse(const InfuseOptions& o) {
  if (o.data.empty() || o.descriptions.empty() || o.out.empty()) fail("infuse: --data, --descriptions and --out are required");
  InfuseResult res;
  Tally tally;

  // descriptions by id
  struct Desc {
    std::string text, image;
    size_t line = 0;
    bool error = false;
  };
  std::map<std::string, Desc> descs;
  if (!file_exists(o.descriptions)) fail(o.descriptions, ": does not exist");
  read_jsonl(
      o.descriptions,
      [&](size_t line, const json& j) {
        const std::string where = str_cat(o.descriptions, ": line ", line);
        if (!j.contains("id") || j["id"].is_null()) {
          ++res.bad_description_lines;
          tally.add("bad_description_lines", line, where + ": no \"id\"; skipped");
          return;
        }
        const std::string id = id_text(j["id"]);
        Desc d;
        d.line = line;
        d.image = j.value("image", std::string());
        if (j.contains("error")) {
          d.error = true;
        } else if (!j.contains("description") || !j["description"].is_string()) {
          ++res.bad_description_lines;
          tally.add("bad_description_lines", line, where + " (id " + id + "): no \"description\" string; skipped");
          return;
        } else {
          d.text = j["description"].get<std::string>();
        }
        auto [it, fresh] = descs.emplace(id, d);
        if (!fresh) {
          ++res.bad_description_lines;
          tally.add("duplicate_description_ids", id,
                    str_cat(where, ": id ", id, " was described on line ", it->second.line, " already; this line is skipped"));
        }
      },
      [&](size_t line, const std::string& msg) {
        ++res.bad_description_lines;
        tally.add("bad_description_lines", line, msg + "; skipped");
      });

  // the records, in their layout
  const std::string text = read_text_file(o.data);
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool is_list = first != std::string::npos && text[first] == '[';
  std::vector<ojson> records;       // null for a JSONL line that is not JSON (kept verbatim)
  std::vector<std::string> raw;     // JSONL: the line as read
  if (is_list) {
    ojson all;
    try {
      all = ojson::parse(text);
    } catch (const std::exception& e) {
      fail(o.data, ": not valid JSON (expected a list of LLaVA records): ", e.what());
    }
    if (!all.is_array()) fail(o.data, ": expected a JSON list of LLaVA records");
    for (auto& r : all) records.push_back(std::move(r));
  } else {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (strip(line).empty()) continue;
      raw.push_back(line);
      try {
        records.push_back(ojson::parse(line));
      } catch (const std::exception&) {
        records.push_back(ojson());
      }
    }
  }

  std::map<std::string, bool> used;
  for (size_t i = 0; i < records.size(); ++i) {
    ojson& r = records[i];
    ++res.records;
    const std::string where = str_cat(o.data, is_list ? ": record " : ": line ", is_list ? i : i + 1);
    auto bad = [&](const std::string& id, const std::string& why) {
      ++res.bad_records;
      tally.add("bad_records", json({{"record", i}, {"id", id}}),
                where + (id.empty() ? "" : " (id " + id + ")") + ": " + why + "; passed through unchanged");
    };
    if (!r.is_object()) {
      bad("", r.is_null() ? "not valid JSON" : "not a JSON object");
      continue;
    }
    const std::string id = r.contains("id") ? id_text(r["id"]) : "";
    if (!r.contains("conversations") || !r["conversations"].is_array() || r["conversations"].empty()) {
      bad(id, "no \"conversations\" list");
      continue;
    }
    ojson& turn = r["conversations"][0];
    if (!turn.is_object() || !turn.contains("value") || !turn["value"].is_string() ||
        !(turn.value("from", std::string()) == "human" || turn.value("from", std::string()) == "user")) {
      bad(id, "the first turn is not a human turn with a \"value\" string");
      continue;
    }
    auto d = id.empty() ? descs.end() : descs.find(id);
    if (d == descs.end() || d->second.error) {
      ++res.without_description;
      if (d != descs.end()) {
        ++res.describe_failed;
        used[id] = true;
      }
      tally.add(d == descs.end() ? "without_description" : "describe_failed", json({{"record", i}, {"id", id}}),
                where + (id.empty() ? " (no id)" : " (id " + id + ")") +
                    (d == descs.end() ? ": no description" : ": its image could not be described") +
                    "; passed through unchanged");
      continue;
    }
    used[id] = true;
    const std::string image = r.contains("image") && r["image"].is_string() ? r["image"].get<std::string>() : "";
    if (!image.empty() && !d->second.image.empty() &&
        fs::path(image).lexically_normal() != fs::path(d->second.image).lexically_normal()) {
      ++res.image_mismatch;
      tally.add("image_mismatch", json({{"record", i}, {"id", id}}),
                str_cat(where, " (id ", id, "): its image is ", image, " but ", o.descriptions, ": line ",
                        d->second.line, " describes ", d->second.image, "; passed through unchanged"));
      continue;
    }
    turn["value"] = infuse_description(turn["value"].get<std::string>(), d->second.text);
    ++res.infused;
  }
  for (const auto& [id, d] : descs)
    if (!used.count(id)) {
      ++res.unused_descriptions;
      tally.add("unused_descriptions", id,
                str_cat(o.descriptions, ": line ", d.line, ": id ", id, " names no record of ", o.data));
    }

  // the output, in the input's layout
  {
    std::error_code ec;
    const fs::path parent = fs::path(o.out).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  std::string out;
  if (is_list) {
    ojson all = ojson::array();
    for (auto& r : records) all.push_back(std::move(r));
    const bool indented = text.find('\n', first) != std::string::npos && text.find('\n', first) < text.size() - 1;
    out = all.dump(indented ? 2 : -1) + "\n";
  } else {
    for (size_t i = 0; i < records.size(); ++i) out += (records[i].is_object() ? records[i].dump() : raw[i]) + "\n";
  }
  write_file_atomic(o.out, out);

  res.summary = {{"data", o.data},
                 {"descriptions", o.descriptions},
                 {"out", o.out},
                 {"records", res.records},
                 {"infused", res.infused},
                 {"without_description", res.without_description},
                 {"describe_failed", res.describe_failed},
                 {"bad_records", res.bad_records},
                 {"image_mismatch", res.image_mismatch},
                 {"unused_descriptions", res.unused_descriptions},
                 {"bad_description_lines", res.bad_description_lines},
                 {"problems", tally.summary}};
  write_file_atomic(o.summary.empty() ? o.out + ".summary.json" : o.summary, res.summary.dump(1) + "\n");
  return res;
}

}  // namespace stic
