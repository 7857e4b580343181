// stic/method/pref_data.cpp — see pref_data.h.
#include "stic/method/pref_data.h"

#include <filesystem>
#include <map>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/rng.h"
#include "stic/util/strings.h"

namespace stic {

const PrefPrompts& default_pref_prompts() {
  static const PrefPrompts p = {
      "Please provide a detailed description of the image, focusing on the following.\n"
      "Identify the main subjects (people, animals, objects) in the image and describe what they are doing.\n"
      "Describe the setting of the image. Is it indoors or outdoors? What kind of environment or location does it "
      "depict?\n"
      "What mood does the image convey? Are there any specific elements (such as lighting, weather, expressions) "
      "that contribute to this atmosphere?\n"
      "Describe the dominant colors and the overall composition. How do these elements affect the image's impact?\n"
      "Point out any details or symbols that might be relevant to understanding the image's meaning or context.\n"
      "If applicable, provide interpretations of what the image might represent or communicate.",
      {"Illustrate the details of the picture.", "Summarize the visual content presented.",
       "Explain what is depicted in the photograph.", "Outline the key elements captured in the image.",
       "Detail the composition and subjects within the frame.",
       "Convey the atmosphere and mood represented in the snapshot.", "Interpret the scene shown in the image.",
       "Identify and describe the main focal points in the visual."},
      {"Describe the image with imaginative objects that may exist in the scene.",
       "Enrich the description by adding hypothetical objects or characters that could be part of the scene.",
       "Suggest and detail practical items or people that could logically inhabit the image's setting.",
       "Incorporate elements that, though absent, would seamlessly fit into the context of the picture.",
       "Imagine and describe additional everyday objects or activities taking place just out of frame.",
       "Augment the scene with details of potential events or items that are plausible.",
       "Conceive of and detail natural elements, such as weather or animals, that could realistically enter the "
       "scene. Make the description affirmative.",
       "Invent and incorporate details of practical tools, vehicles, or gadgets that could be expected in a similar "
       "scenario."}};
  return p;
}

PrefPrompts load_pref_prompts(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected an object {\"preferred\", \"normal\", \"hallucination\"}");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "preferred" && it.key() != "normal" && it.key() != "hallucination")
      fail(path, ": unknown key \"", it.key(), "\" (valid: preferred, normal, hallucination)");
  PrefPrompts p;
  if (!j.contains("preferred") || !j["preferred"].is_string() || j["preferred"].get<std::string>().empty())
    fail(path, ": \"preferred\" must be a non-empty string");
  p.preferred = j["preferred"];
  for (const char* k : {"normal", "hallucination"}) {
    if (!j.contains(k) || !j[k].is_array() || j[k].empty()) fail(path, ": \"", k, "\" must be a non-empty list of strings");
    auto& dst = std::string(k) == "normal" ? p.normal : p.hallucination;
    for (size_t i = 0; i < j[k].size(); ++i) {
      if (!j[k][i].is_string() || j[k][i].get<std::string>().empty())
        fail(path, ": \"", k, "\"[", i, "] must be a non-empty string");
      dst.push_back(j[k][i]);
    }
  }
  return p;
}

PrefDraw draw_pref(uint64_t seed, const std::string& image_id, double p_bad_prompt,
                   const std::vector<std::string>& corruptions, const PrefPrompts& prompts) {
  if (corruptions.empty() && p_bad_prompt < 1.0) fail("generate-pref: no corruption kinds and --p-bad-prompt < 1");
  uint64_t h = splitmix64(seed);
  for (unsigned char c : image_id) h = splitmix64(h ^ c);
  SplitMix64 rng(h);
  // a fixed sequence of draws, whatever they decide
  const double u_bad = rng.uniform();
  const uint64_t u_stored = rng.next(), u_hallu = rng.next(), u_kind = rng.next();
  const double u_bright = rng.uniform(), u_hue = rng.uniform();
  PrefDraw d;
  d.bad_prompt = u_bad < p_bad_prompt;
  d.stored_prompt = static_cast<int>(u_stored % prompts.normal.size());
  d.hallu_prompt = static_cast<int>(u_hallu % prompts.hallucination.size());
  if (!corruptions.empty()) {
    const std::string& kind = corruptions[u_kind % corruptions.size()];
    if (kind == "lowres") {
      d.corruption.kind = ImageTransform::Kind::LowRes;
      d.corruption.short_side = 20;
    } else if (kind == "jitter") {  // torchvision ColorJitter(brightness=.5, hue=.3)
      d.corruption.kind = ImageTransform::Kind::Jitter;
      d.corruption.brightness = static_cast<float>(0.5 + u_bright);
      d.corruption.hue = static_cast<float>(-0.3 + 0.6 * u_hue);
    } else {
      fail("generate-pref: unknown corruption '", kind, "' (available: lowres, jitter)");
    }
  }
  return d;
}

namespace {
bool is_message_list(const nlohmann::json& m) {
  if (!m.is_array() || m.size() < 2) return false;
  for (auto& x : m)
    if (!x.is_object() || !x.contains("role") || !x.contains("content") || !x["content"].is_string()) return false;
  return true;
}
}  // namespace

std::string pref_record_id(const nlohmann::json& j) {
  if (j.contains("id")) return j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
  return j.value("image", std::string());
}

std::vector<PrefRecord> read_pref_records(const std::string& path,
                                          const std::function<void(const std::string&, const std::string&)>& on_bad) {
  const std::string body = read_text_file(path);
  std::vector<PrefRecord> out;
  auto take = [&](nlohmann::json j, const std::string& where) {
    if (!j.is_object()) return on_bad(where, "expected a JSON object");
    if (!j.contains("chosen") || !is_message_list(j["chosen"]))
      return on_bad(where, "\"chosen\" must be a list of {role, content} messages (user, assistant)");
    if (!j.contains("rejected") || !is_message_list(j["rejected"]))
      return on_bad(where, "\"rejected\" must be a list of {role, content} messages (user, assistant)");
    out.push_back({std::move(j), where});
  };
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '[') {
    nlohmann::json all;
    try {
      all = nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": not valid JSON (expected a list of preference pairs): ", e.what());
    }
    for (size_t i = 0; i < all.size(); ++i) take(all[i], str_cat(path, ": element ", i));
    return out;
  }
  std::istringstream in(body);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (strip(line).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      on_bad(str_cat(path, ": line ", n), "not valid JSON");
      continue;
    }
    take(std::move(j), str_cat(path, ": line ", n));
  }
  return out;
}

int64_t convert_pref_files(const std::vector<std::string>& inputs, const std::string& out) {
  if (inputs.empty()) fail("convert: no input files");
  std::vector<nlohmann::json> all;
  std::map<std::string, std::string> seen;  // id -> where
  int bad = 0;
  for (const auto& in : inputs) {
    for (auto& r : read_pref_records(in, [&](const std::string& where, const std::string& why) {
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
