#include "stic/world/metrics.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace stic::world {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// ---------------------------------------------------------------- lexicon
struct Lexicon {
  std::unordered_map<std::string, int> shape, plural, color, size, number;
  Lexicon() {
    for (size_t i = 0; i < shape_names().size(); ++i) {
      shape[shape_names()[i]] = static_cast<int>(i);
      plural[shape_plurals()[i]] = static_cast<int>(i);
    }
    shape["rectangle"] = 1, plural["rectangles"] = 1, shape["ring"] = 0, shape["rhombus"] = 5, plural["rhombi"] = 5;
    shape["plus"] = 7, shape["x"] = 7;
    for (size_t i = 0; i < object_colors().size(); ++i) color[object_colors()[i].name] = static_cast<int>(i);
    color["violet"] = 5, color["magenta"] = 6, color["gold"] = 2;
    for (size_t i = 0; i < size_names().size(); ++i) size[size_names()[i]] = static_cast<int>(i);
    size["tiny"] = 0, size["little"] = 0, size["big"] = 2, size["huge"] = 2, size["mid-sized"] = 1, size["midsize"] = 1;
    const char* w[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"};
    for (int i = 0; i <= 10; ++i) number[w[i]] = i, number[std::to_string(i)] = i;
    number["a"] = 1, number["an"] = 1, number["single"] = 1, number["another"] = 1, number["several"] = 2;
  }
};
const Lexicon& lex() {
  static const Lexicon L;
  return L;
}

template <typename M>
int find_in(const M& m, const std::string& w) {
  auto it = m.find(w);
  return it == m.end() ? -1 : it->second;
}

// Words of a text (lower case; letters, digits and '-' inside words); `breaks` marks the word
// indices after which a sentence ends; `subs` marks clause boundaries (",", "and", ...).
struct Words {
  std::vector<std::string> w;
  std::vector<int> sentence, clause;  // per word
};

Words split_words(const std::string& text) {
  Words out;
  int sent = 0, clause = 0;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    if (cur == "and" || cur == "but" || cur == "while" || cur == "whereas") {
      ++clause;
    } else if (!cur.empty()) {
      out.w.push_back(cur);
      out.sentence.push_back(sent);
      out.clause.push_back(clause);
    }
    cur.clear();
  };
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || ch == '\'') {
      cur += static_cast<char>(std::tolower(c));
      continue;
    }
    flush();
    if (ch == '.' || ch == '!' || ch == '?' || ch == ';' || ch == '\n') ++sent, ++clause;
    else if (ch == ',' || ch == ':' || ch == '(' || ch == ')') ++clause;
  }
  flush();
  return out;
}

bool is_pos_word(const std::string& w) {
  return w == "top" || w == "upper" || w == "bottom" || w == "lower" || w == "left" || w == "right" ||
         w == "center" || w == "centre" || w == "middle" || w == "central";
}

std::pair<int, int> decode_position(const std::vector<std::string>& words) {
  int row = -1, col = -1;
  bool mid = false;
  for (const auto& w : words) {
    if (w == "top" || w == "upper") row = 0;
    else if (w == "bottom" || w == "lower") row = 2;
    else if (w == "left") col = 0;
    else if (w == "right") col = 2;
    else if (w == "center" || w == "centre" || w == "middle" || w == "central") mid = true;
  }
  if (mid) {
    if (row < 0) row = 1;
    if (col < 0) col = 1;
    // "middle left": row 1; "top center": col 1 (handled by the defaults above)
  }
  return {row, col};
}

struct PosPhrase {
  int at, row, col;
};

}  // namespace

std::pair<int, int> parse_position(const std::string& text) { return decode_position(split_words(text).w); }

std::vector<Mention> parse_description(const std::string& text) {
  const Words W = split_words(text);
  const auto& L = lex();
  const size_t n = W.w.size();
  // position phrases: maximal runs of position words
  std::vector<PosPhrase> phrases;
  for (size_t i = 0; i < n;) {
    if (!is_pos_word(W.w[i])) { ++i; continue; }
    size_t j = i;
    std::vector<std::string> run;
    while (j < n && is_pos_word(W.w[j]) && W.clause[j] == W.clause[i]) run.push_back(W.w[j++]);
    auto [r, c] = decode_position(run);
    phrases.push_back({static_cast<int>(i), r, c});
    i = j;
  }
  struct Raw {
    Mention m;
    int at, count;
    bool definite, negated;
  };
  std::vector<Raw> raws;
  for (size_t i = 0; i < n; ++i) {
    int shape = find_in(L.shape, W.w[i]);
    const bool plural = shape < 0 && (shape = find_in(L.plural, W.w[i])) >= 0;
    if (shape < 0) continue;
    // "x" is only a shape after a colour/size word
    Raw r{};
    r.m.shape = shape;
    r.at = static_cast<int>(i);
    r.count = plural ? 2 : 1;
    size_t k = i;
    std::string words = W.w[i];
    bool modifier = false;
    while (k > 0 && W.clause[k - 1] == W.clause[i]) {
      const std::string& w = W.w[k - 1];
      int v;
      if ((v = find_in(L.color, w)) >= 0) { if (r.m.color < 0) r.m.color = v; modifier = true; }
      else if ((v = find_in(L.size, w)) >= 0) { if (r.m.size < 0) r.m.size = v; modifier = true; }
      else if (w == "medium" || w == "sized" || w == "colored" || w == "coloured" || w == "bright" || w == "dark" ||
               w == "light" || w == "pale" || w == "solid") {}
      else if ((v = find_in(L.number, w)) >= 0) { if (plural && w != "a" && w != "an") r.count = std::max(v, 0); --k; words = w + " " + words; break; }
      else if (w == "the" || w == "this" || w == "that") { r.definite = true; --k; words = w + " " + words; break; }
      else break;
      --k;
      words = w + " " + words;
    }
    if (W.w[i] == "x" && !modifier) continue;
    r.m.text = words;
    // negation earlier in the same clause
    for (size_t q = 0; q < i; ++q)
      if (W.clause[q] == W.clause[i] && (W.w[q] == "no" || W.w[q] == "not" || W.w[q] == "without" || W.w[q] == "nor" ||
                                         W.w[q] == "neither" || W.w[q] == "none"))
        r.negated = true;
    raws.push_back(r);
  }
  // positions: the nearest phrase in the mention's clause; else the nearest phrase of the same
  // sentence that sits in a clause without mentions ("In the top left, there is a red circle.")
  std::set<int> clauses_with_mentions;
  for (const auto& r : raws) clauses_with_mentions.insert(W.clause[static_cast<size_t>(r.at)]);
  for (auto& r : raws) {
    const int cl = W.clause[static_cast<size_t>(r.at)], se = W.sentence[static_cast<size_t>(r.at)];
    const PosPhrase* best = nullptr;
    int bd = 1 << 30;
    for (const auto& p : phrases)
      if (W.clause[static_cast<size_t>(p.at)] == cl && std::abs(p.at - r.at) < bd) bd = std::abs(p.at - r.at), best = &p;
    if (!best)
      for (const auto& p : phrases)
        if (W.sentence[static_cast<size_t>(p.at)] == se && !clauses_with_mentions.count(W.clause[static_cast<size_t>(p.at)]) &&
            std::abs(p.at - r.at) < bd)
          bd = std::abs(p.at - r.at), best = &p;
    if (best) r.m.row = best->row, r.m.col = best->col;
  }
  std::vector<Mention> out;
  for (const auto& r : raws) {
    if (r.negated) continue;
    if (r.definite) {  // co-reference of an earlier mention?
      bool seen = false;
      for (const auto& m : out)
        if (m.shape == r.m.shape && (r.m.color < 0 || m.color == r.m.color)) seen = true;
      if (seen) continue;
    }
    for (int c = 0; c < std::min(r.count, 9); ++c) out.push_back(r.m);
  }
  return out;
}

DescriptionScore score_description(const Scene& scene, const std::string& text) {
  DescriptionScore d;
  const auto ms = parse_description(text);
  const auto& objs = scene.objects;
  d.objects = static_cast<int>(objs.size());
  d.mentions = static_cast<int>(ms.size());
  auto agree = [&](const Mention& m, const WorldObject& o) {
    int s = 0;
    if (m.row >= 0 && m.row == o.row && m.col >= 0 && m.col == o.col) s += 4;
    else if ((m.row >= 0 && m.row == o.row) || (m.col >= 0 && m.col == o.col)) s += 2;
    if (m.color >= 0 && m.color == o.color) s += 8;
    if (m.size >= 0 && m.size == o.size) s += 1;
    return s;
  };
  // one-to-one greedy matching over candidate pairs, best agreement first
  auto match = [&](bool need_color) {
    struct P { int score; size_t m, o; };
    std::vector<P> pairs;
    for (size_t i = 0; i < ms.size(); ++i)
      for (size_t k = 0; k < objs.size(); ++k) {
        if (ms[i].shape != objs[k].shape) continue;
        if (need_color && ms[i].color >= 0 && ms[i].color != objs[k].color) continue;
        pairs.push_back({agree(ms[i], objs[k]), i, k});
      }
    std::stable_sort(pairs.begin(), pairs.end(), [](const P& a, const P& b) { return a.score > b.score; });
    std::vector<int> m_to(ms.size(), -1), o_to(objs.size(), -1);
    for (const auto& p : pairs)
      if (m_to[p.m] < 0 && o_to[p.o] < 0) m_to[p.m] = static_cast<int>(p.o), o_to[p.o] = static_cast<int>(p.m);
    return std::make_pair(m_to, o_to);
  };
  auto [cm, co] = match(true);
  for (size_t i = 0; i < ms.size(); ++i) {
    if (cm[i] >= 0) { ++d.correct; continue; }
    ++d.hallucinated;
    const auto& m = ms[i];
    bool shape_here = false;
    for (const auto& o : objs) shape_here |= o.shape == m.shape;
    if (!shape_here) ++d.shape_hallucinated;
    d.hallucinated_items.push_back((m.color >= 0 ? std::string(object_colors()[static_cast<size_t>(m.color)].name) + " " : "") +
                                   shape_names()[static_cast<size_t>(m.shape)]);
  }
  for (size_t k = 0; k < objs.size(); ++k) {
    if (co[k] >= 0) ++d.matched_objects;
    else d.missed_items.push_back(objs[k].category());
  }
  auto [am, ao] = match(false);
  (void)ao;
  for (const char* a : {"color", "size", "position"}) d.attr[a];
  for (size_t i = 0; i < ms.size(); ++i) {
    if (am[i] < 0) continue;
    const auto& m = ms[i];
    const auto& o = objs[static_cast<size_t>(am[i])];
    if (m.color >= 0) { ++d.attr["color"].stated; d.attr["color"].correct += m.color == o.color; }
    if (m.size >= 0) { ++d.attr["size"].stated; d.attr["size"].correct += m.size == o.size; }
    if (m.row >= 0 || m.col >= 0) {
      ++d.attr["position"].stated;
      d.attr["position"].correct += (m.row < 0 || m.row == o.row) && (m.col < 0 || m.col == o.col);
    }
  }
  return d;
}

// ---------------------------------------------------------------- short answers
namespace {

std::string first_line(const std::string& s) {
  const size_t p = s.find('\n');
  std::string t = p == std::string::npos ? s : s.substr(0, p);
  size_t a = 0;
  while (a < t.size() && std::isspace(static_cast<unsigned char>(t[a]))) ++a;
  return t.substr(a);
}

}  // namespace

std::string pope_yes_no(const std::string& prediction) {
  // POPE's rule: first sentence; "no" or "not" anywhere in it means no, else yes.
  std::string t = prediction;
  const size_t dot = t.find('.');
  if (dot != std::string::npos) t = t.substr(0, dot);
  for (const auto& w : split_words(t).w)
    if (w == "no" || w == "not") return "no";
  return "yes";
}

bool score_answer(const std::string& type, const std::string& truth, const std::string& prediction,
                  std::string* parsed, const std::vector<std::string>& options) {
  const auto& L = lex();
  std::string got;
  const auto words = split_words(first_line(prediction)).w;
  if (type == "count") {
    for (const auto& w : words) {
      int v = find_in(L.number, w);
      if (v >= 0 && w != "a" && w != "an" && w != "another" && w != "several" && w != "single") { got = std::to_string(v); break; }
      if (!w.empty() && std::all_of(w.begin(), w.end(), ::isdigit)) { got = w; break; }
    }
  } else if (type == "color" || type == "shape" || type == "size") {
    for (const auto& w : words) {
      int v = -1;
      if (type == "color" && (v = find_in(L.color, w)) >= 0) got = object_colors()[static_cast<size_t>(v)].name;
      if (type == "shape" && ((v = find_in(L.shape, w)) >= 0 || (v = find_in(L.plural, w)) >= 0))
        got = shape_names()[static_cast<size_t>(v)];
      if (type == "size" && (v = find_in(L.size, w)) >= 0) got = size_names()[static_cast<size_t>(v)];
      if (!got.empty()) break;
    }
  } else if (type == "position") {
    auto [r, c] = decode_position(words);
    auto [tr, tc] = parse_position(truth);
    if (r >= 0 && c >= 0) got = position_name(r, c);
    if (parsed) *parsed = got;
    return r == tr && c == tc;
  } else if (type == "existence" || type == "pope") {
    got = pope_yes_no(prediction);
    if (parsed) *parsed = got;
    std::string t = truth;
    for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return got == t;
  } else if (type == "choice") {
    const std::string fl = first_line(prediction);
    // "B", "B.", "(B)", "B) ...", "The answer is B"
    for (size_t i = 0; i < fl.size() && got.empty(); ++i) {
      const char ch = fl[i];
      if (ch < 'A' || ch > 'D') continue;
      const bool left_ok = i == 0 || !std::isalpha(static_cast<unsigned char>(fl[i - 1]));
      const bool right_ok = i + 1 >= fl.size() || !std::isalpha(static_cast<unsigned char>(fl[i + 1]));
      if (left_ok && right_ok && !(ch == 'A' && i + 1 < fl.size() && fl[i + 1] == ' ' && i > 0)) got = std::string(1, ch);
    }
    if (got.empty())  // the option's text instead of its letter
      for (size_t k = 0; k < options.size(); ++k)
        if (!options[k].empty() && fl.find(options[k]) != std::string::npos) got = std::string(1, static_cast<char>('A' + k));
  } else {
    fail("unknown answer type '", type, "'");
  }
  if (parsed) *parsed = got;
  return !got.empty() && got == truth;
}

// ---------------------------------------------------------------- whole-world scoring
json WorldScores::to_json() const {
  json j;
  j["descriptions"] = {{"count", descriptions},
                       {"objects", desc.objects},
                       {"mentions", desc.mentions},
                       {"precision", desc.precision()},
                       {"recall", desc.recall()},
                       {"chair_i", desc.chair_i()},
                       {"chair_s", chair_s()},
                       {"shape_hallucination_rate", desc.mentions ? static_cast<double>(desc.shape_hallucinated) / desc.mentions : 0.0}};
  for (const auto& [k, v] : desc.attr) j["descriptions"]["attribute_accuracy"][k] = {{"accuracy", v.accuracy()}, {"stated", v.stated}};
  for (const auto& [k, v] : vqa) j["vqa"][k] = {{"accuracy", v.accuracy()}, {"n", v.stated}};
  for (const auto& [k, v] : choice_by_category) j["choice_by_category"][k] = {{"accuracy", v.accuracy()}, {"n", v.stated}};
  for (const auto& [k, v] : pope)
    j["pope"][k] = {{"accuracy", v.accuracy()}, {"precision", v.precision()}, {"recall", v.recall()},
                    {"f1", v.f1()},             {"yes_ratio", v.yes_ratio()}, {"n", v.n()}};
  j["predictions"] = predictions;
  j["scored"] = scored;
  j["missing"] = missing;
  j["unknown_ids"] = unknown_ids;
  return j;
}

std::string WorldScores::markdown() const {
  auto pct = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", 100 * x);
    return std::string(b);
  };
  std::ostringstream s;
  s << "## Descriptions (" << descriptions << " images, " << desc.objects << " objects, " << desc.mentions << " mentions)\n\n";
  s << "| precision | recall | CHAIR_i | CHAIR_s | colour acc | size acc | position acc |\n";
  s << "|---|---|---|---|---|---|---|\n";
  auto attr = [&](const char* k) {
    auto it = desc.attr.find(k);
    return it == desc.attr.end() || !it->second.stated ? std::string("-") : pct(it->second.accuracy());
  };
  s << "| " << pct(desc.precision()) << " | " << pct(desc.recall()) << " | " << pct(desc.chair_i()) << " | "
    << pct(chair_s()) << " | " << attr("color") << " | " << attr("size") << " | " << attr("position") << " |\n\n";
  s << "## Questions\n\n| task | accuracy | n |\n|---|---|---|\n";
  for (const auto& [k, v] : vqa) s << "| " << k << " | " << pct(v.accuracy()) << " | " << v.stated << " |\n";
  for (const auto& [k, v] : choice_by_category) s << "| choice/" << k << " | " << pct(v.accuracy()) << " | " << v.stated << " |\n";
  s << "\n## POPE\n\n| split | accuracy | precision | recall | F1 | yes ratio | n |\n|---|---|---|---|---|---|---|\n";
  for (const auto& [k, v] : pope)
    s << "| " << k << " | " << pct(v.accuracy()) << " | " << pct(v.precision()) << " | " << pct(v.recall()) << " | "
      << pct(v.f1()) << " | " << pct(v.yes_ratio()) << " | " << v.n() << " |\n";
  s << "\n" << scored << " of " << (scored + missing) << " requests scored";
  if (missing) s << " (" << missing << " without a prediction)";
  if (unknown_ids) s << "; " << unknown_ids << " predictions with ids the world does not know were skipped";
  s << ". All numbers in %.\n";
  return s.str();
}

namespace {

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open");
  std::vector<json> out;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      fail(path, ":", no, ": not valid JSON (", e.what(), ")");
    }
    if (!out.back().is_object()) fail(path, ":", no, ": expected a JSON object");
  }
  return out;
}

std::string id_of(const json& j) {
  for (const char* k : {"id", "question_id"})
    if (j.contains(k)) return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
  return "";
}

}  // namespace

WorldScores score_world(const std::string& world_dir, const std::string& predictions_jsonl, const ScoreOptions& opts) {
  const std::string ans_path = world_dir + "/gt/eval_answers.jsonl", sc_path = world_dir + "/gt/eval_scenes.jsonl";
  if (!file_exists(world_dir + "/world.json")) fail(world_dir, ": not a stic world (no world.json)");
  std::map<std::string, Scene> scenes;  // by image
  {
    int no = 0;
    for (const auto& j : read_jsonl(sc_path)) {
      ++no;
      Scene s = scene_from_json(j, sc_path + ":" + std::to_string(no));
      scenes[s.image] = s;
    }
  }
  const auto answers = read_jsonl(ans_path);
  std::unordered_map<std::string, std::string> preds;
  WorldScores W;
  {
    std::ifstream in(predictions_jsonl);
    if (!in) fail(predictions_jsonl, ": cannot open");
    std::string line;
    int no = 0;
    std::set<std::string> known;
    for (const auto& a : answers) known.insert(a.value("id", std::string()));
    while (std::getline(in, line)) {
      ++no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        fail(predictions_jsonl, ":", no, ": not valid JSON (", e.what(), ")");
      }
      const std::string id = j.is_object() ? id_of(j) : "";
      std::string text;
      for (const char* k : {"text", "prediction", "answer"})
        if (j.is_object() && j.contains(k) && j[k].is_string()) { text = j[k].get<std::string>(); break; }
      if (id.empty() || !j.is_object() || !(j.contains("text") || j.contains("prediction") || j.contains("answer")))
        fail(predictions_jsonl, ":", no, ": expected {\"id\": ..., \"text\": ...}");
      ++W.predictions;
      if (!known.count(id)) { ++W.unknown_ids; continue; }
      preds[id] = text;
    }
  }
  std::string per_item;
  for (const auto& a : answers) {
    const std::string id = a.value("id", std::string()), type = a.value("type", std::string());
    auto it = preds.find(id);
    if (it == preds.end()) { ++W.missing; continue; }
    ++W.scored;
    ojson rec = {{"id", id}, {"image", a.value("image", std::string())}, {"type", type}};
    if (type == "describe") {
      auto sit = scenes.find(a.value("image", std::string()));
      if (sit == scenes.end()) fail(ans_path, ": no scene for image '", a.value("image", std::string()), "' in ", sc_path);
      auto d = score_description(sit->second, it->second);
      ++W.descriptions;
      if (d.hallucinated) ++W.desc_with_hallucination;
      auto& S = W.desc;
      S.objects += d.objects, S.mentions += d.mentions, S.correct += d.correct, S.matched_objects += d.matched_objects;
      S.hallucinated += d.hallucinated, S.shape_hallucinated += d.shape_hallucinated;
      for (const auto& [k, v] : d.attr) S.attr[k].correct += v.correct, S.attr[k].stated += v.stated;
      rec["objects"] = d.objects, rec["mentions"] = d.mentions, rec["correct"] = d.correct;
      rec["precision"] = d.precision(), rec["recall"] = d.recall(), rec["chair_i"] = d.chair_i();
      rec["hallucinated"] = d.hallucinated_items, rec["missed"] = d.missed_items;
      for (const auto& [k, v] : d.attr) rec["attributes"][k] = {v.correct, v.stated};
      rec["text"] = it->second;
    } else {
      const std::string truth = a.value("answer", std::string());
      std::vector<std::string> options;
      if (a.contains("options")) options = a["options"].get<std::vector<std::string>>();
      std::string parsed;
      const bool ok = score_answer(type, truth, it->second, &parsed, options);
      if (type == "pope") {
        const std::string label = truth;
        for (const std::string& split : std::vector<std::string>{a.value("pope", std::string("all")), std::string("all")}) {
          auto& c = W.pope[split];
          if (parsed == "yes") (label == "yes" ? c.tp : c.fp)++;
          else (label == "no" ? c.tn : c.fn)++;
        }
      } else {
        auto& v = W.vqa[type];
        ++v.stated, v.correct += ok;
        if (type == "choice") {
          auto& c = W.choice_by_category[a.value("category", std::string("?"))];
          ++c.stated, c.correct += ok;
        }
      }
      rec["answer"] = truth, rec["prediction"] = it->second, rec["parsed"] = parsed, rec["correct"] = ok;
      if (a.contains("pope")) rec["pope"] = a["pope"];
    }
    per_item += rec.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  if (!opts.out_dir.empty()) {
    std::filesystem::create_directories(opts.out_dir);
    auto write = [](const std::string& p, const std::string& t) {
      AtomicFile f(p);
      f.write(t);
      f.commit();
    };
    write(opts.out_dir + "/per_item.jsonl", per_item);
    write(opts.out_dir + "/summary.json", W.to_json().dump(2) + "\n");
    write(opts.out_dir + "/summary.md", W.markdown());
  }
  return W;
}

}  // namespace stic::world
