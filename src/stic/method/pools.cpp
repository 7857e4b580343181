// stic/method/pools.cpp — see pools.h.
#include "stic/method/pools.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/rng.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {

std::vector<std::string> list_pool_images(const std::string& image_dir, const std::string& image_list) {
  std::vector<std::string> out;
  if (!image_list.empty()) {
    for (const auto& [line, entry] : read_list_file(image_list)) out.push_back(entry);
    return out;
  }
  if (!dir_exists(image_dir)) fail(image_dir, ": the image folder does not exist");
  std::error_code ec;
  fs::directory_iterator it(image_dir, ec), end;
  if (ec) fail(image_dir, ": cannot read the image folder: ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(image_dir, ": cannot read the image folder: ", ec.message());
    std::error_code fe;
    if (!it->is_regular_file(fe)) continue;
    std::string e = it->path().extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".gif") out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<size_t> pool_sample(const std::vector<std::string>& keys, int64_t n, uint64_t seed) {
  std::vector<size_t> idx(keys.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  if (n <= 0 || static_cast<size_t>(n) >= keys.size()) return idx;
  std::vector<std::pair<uint64_t, size_t>> h;
  h.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) h.emplace_back(hash_id(seed, keys[i]), i);
  std::nth_element(h.begin(), h.begin() + n, h.end());
  idx.clear();
  for (int64_t i = 0; i < n; ++i) idx.push_back(h[static_cast<size_t>(i)].second);
  std::sort(idx.begin(), idx.end());
  return idx;
}

RecordPool sample_records(const std::string& data, int64_t n, uint64_t seed, const std::string& out) {
  check_regular_file(data, "instruction data file");
  std::vector<json> recs;
  std::vector<std::string> keys;
  int64_t records = 0, duplicates = 0;
  std::set<std::string> ids;
  read_json_records(
      data, "a list of LLaVA records",
      [&](size_t i, const std::string& where, json& j) {
        if (!j.is_object()) fail(data, ": ", where, ": a record must be a JSON object");
        ++records;
        if (!j.contains("image") || !j["image"].is_string() || j["image"].get<std::string>().empty()) return;
        const std::string key = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump())
                                                 : "#" + std::to_string(i);
        if (!ids.insert(key).second) {  // describe and infuse match by id: a repeated id is left out
          ++duplicates;
          return;
        }
        keys.push_back(key);
        recs.push_back(std::move(j));
      },
      [&](size_t, const std::string& where, const std::string& msg) { fail(data, ": ", where, ": not valid JSON: ", msg); });
  RecordPool p;
  p.records = records;
  p.with_image = static_cast<int64_t>(recs.size()) + duplicates;
  p.duplicate_ids = duplicates;
  json kept = json::array();
  std::set<std::string> seen;
  for (size_t i : pool_sample(keys, n, seed)) {
    const json& r = recs[i];
    if (seen.insert(r["image"].get<std::string>()).second) p.images.push_back(r["image"].get<std::string>());
    kept.push_back(r);
  }
  p.kept = static_cast<int64_t>(kept.size());
  if (!out.empty()) write_file_atomic(out, kept.dump(1) + "\n");
  return p;
}

}  // namespace stic
