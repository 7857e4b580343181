// stic/score/benchmark.cpp — see benchmark.h. Each rule names the scorer it re-implements:
//   [pope]  haotian-liu/LLaVA llava/eval/eval_pope.py (eval_pope)
//   [sqa]   haotian-liu/LLaVA llava/eval/eval_science_qa.py (main, get_pred_idx) and
//           llava/eval/model_vqa_science.py (the prompt)
//   [tvqa]  haotian-liu/LLaVA llava/eval/eval_textvqa.py (prompt_processor, eval_single) and
//           llava/eval/m4c_evaluator.py (EvalAIAnswerProcessor, TextVQAAccuracyEvaluator)
//   [mmb]   open-compass/VLMEvalKit vlmeval/utils (can_infer, can_infer_option, can_infer_text),
//           its circular evaluation, and haotian-liu/LLaVA llava/eval/model_vqa_mmbench.py (the
//           prompt, get_options, the option rotation of --all-rounds)
//   [vqa]   haotian-liu/LLaVA llava/eval/model_vqa_loader.py (question files used as they are)
#include "stic/score/benchmark.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

#include "stic/image/image.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic::score {
namespace {

const char* kShortAnswer = "Answer the question using a single word or phrase.";
const char* kOptionLetter = "Answer with the option's letter from the given choices directly.";

std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string id_string(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string resolve(const std::string& dir, const std::string& name) {
  if (name.empty()) return "";
  return dir.empty() || fs::path(name).is_absolute() ? name : (fs::path(dir) / name).string();
}

// LLaVA's question files end short-answer questions with the instruction; files without it
// (the built-in world's, POPE's annotation layout) get it, as LLaVA-1.5 evaluates POPE/TextVQA.
std::string with_instruction(std::string text, const std::string& instruction, std::string* kept) {
  text = strip(text);
  *kept = instruction;
  if (ends_with(text, instruction)) return text;
  return text + "\n" + instruction;
}

void check_image(Item& it, const LoadOptions& o) {
  if (o.images && !it.image.empty() && it.error.empty() && !file_exists(it.image)) it.error = "image not found: " + it.image;
}

json parse_json_file(const std::string& path, const std::string& what) {
  if (!file_exists(path)) fail(path, ": no such file (", what, ")");
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON (", what, "): ", e.what());
  }
}

// a question file in LLaVA's JSONL layout: {"question_id", "image", "text", "category"?}
std::vector<json> read_question_jsonl(const std::string& path) {
  if (!file_exists(path)) fail(path, ": no such question file");
  std::vector<json> out;
  read_json_records(
      path, "LLaVA questions",
      [&](size_t, const std::string& where, json& j) {
        if (!j.is_object() || !j.contains("question_id") || !j.contains("text") || !j["text"].is_string())
          fail(path, ": ", where, ": expected {\"question_id\", \"image\", \"text\"} (LLaVA's question layout)");
        out.push_back(std::move(j));
      },
      [&](size_t, const std::string& where, const std::string& msg) { fail(path, ": ", where, ": ", msg); });
  return out;
}

// unique ids: question_id, with "#k" added to its k-th repeat (TextVQA's question_id is the image)
void assign_ids(std::vector<Item>& items) {
  std::map<std::string, int> seen;
  for (auto& it : items) {
    const std::string base = id_string(it.question_id);
    const int k = seen[base]++;
    it.id = k == 0 ? base : base + "#" + std::to_string(k);
    if (it.answer_key.empty()) it.answer_key = base;
  }
}

// ---------------------------------------------------------------- POPE
Benchmark load_pope(const LoadOptions& o) {
  Benchmark b;
  b.name = "pope";
  b.max_new_tokens = 128;
  const auto qs = read_question_jsonl(o.data);
  // [pope] labels: coco_pope_{category}.json, one JSON object per line; eval_pope matches the
  // k-th answer of a category with the file's k-th label (by position). Here the k-th question of
  // that category in the question file takes the k-th label, and its text and image must agree.
  std::map<std::string, std::vector<json>> labels;  // category -> records
  if (!o.annotations.empty()) {
    std::vector<std::string> files;
    if (fs::is_directory(o.annotations)) {
      for (auto& e : fs::directory_iterator(o.annotations)) {
        const std::string fn = e.path().filename().string();
        if (starts_with(fn, "coco_pope_") && ends_with(fn, ".json")) files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) fail(o.annotations, ": no coco_pope_{random,popular,adversarial}.json in this folder");
    } else {
      files.push_back(o.annotations);
    }
    for (const auto& f : files) {
      std::string fn = fs::path(f).filename().string();
      if (!starts_with(fn, "coco_pope_") || !ends_with(fn, ".json"))
        fail(f, ": POPE annotation files are named coco_pope_CATEGORY.json");
      const std::string cat = fn.substr(10, fn.size() - 15);
      read_json_records(
          f, "POPE labels",
          [&](size_t, const std::string& where, json& j) {
            if (!j.is_object() || !j.contains("label") || !j["label"].is_string())
              fail(f, ": ", where, ": expected {\"question_id\", \"image\", \"text\", \"label\"}");
            labels[cat].push_back(std::move(j));
          },
          [&](size_t, const std::string& where, const std::string& msg) { fail(f, ": ", where, ": ", msg); });
    }
  }
  std::map<std::string, size_t> pos;  // category -> next label
  for (const auto& q : qs) {
    Item it;
    it.question_id = q["question_id"];
    it.image_name = q.value("image", std::string());
    it.image = resolve(o.image_dir, it.image_name);
    it.category = q.value("category", std::string(labels.size() == 1 ? labels.begin()->first : "default"));
    it.question = with_instruction(q["text"].get<std::string>(), kShortAnswer, &it.instruction);
    std::string label;
    if (!labels.empty()) {
      auto L = labels.find(it.category);
      if (L == labels.end()) {
        if (labels.size() > 1) it.error = "category '" + it.category + "' has no coco_pope_" + it.category + ".json";
        else continue;  // one annotation file: the other categories' questions are not asked
      } else {
        const size_t k = pos[it.category]++;
        if (k >= L->second.size()) {
          it.error = "more " + it.category + " questions than labels in coco_pope_" + it.category + ".json";
        } else {
          const json& a = L->second[k];
          if (a.value("text", std::string()) != q["text"].get<std::string>().substr(0, a.value("text", std::string()).size()) ||
              (a.contains("image") && a["image"] != q.value("image", json())))
            it.error = "question does not match label " + std::to_string(k + 1) + " of coco_pope_" + it.category +
                       ".json (" + a.value("text", std::string()) + ")";
          label = a["label"].get<std::string>();
        }
      }
    } else if (q.contains("label") && q["label"].is_string()) {
      label = q["label"].get<std::string>();  // questions that carry their label (the built-in world's)
    } else {
      fail(o.data, ": question ", id_string(q["question_id"]),
           " has no label: give --annotations (the folder of coco_pope_*.json)");
    }
    if (it.error.empty() && label != "yes" && label != "no")
      it.error = "label '" + label + "' is neither yes nor no";
    it.gold = label;
    check_image(it, o);
    b.items.push_back(std::move(it));
    if (o.limit > 0 && static_cast<int64_t>(b.items.size()) >= o.limit) break;
  }
  for (const auto& [cat, L] : labels)
    if (pos[cat] < L.size() && o.limit == 0)
      b.warnings.push_back("coco_pope_" + cat + ".json has " + std::to_string(L.size()) + " labels, the question file " +
                           std::to_string(pos[cat]) + " questions of that category");
  assign_ids(b.items);
  return b;
}

// ---------------------------------------------------------------- ScienceQA
Benchmark load_scienceqa(const LoadOptions& o) {
  Benchmark b;
  b.name = "scienceqa";
  b.max_new_tokens = 128;
  if (o.annotations.empty()) fail("eval --benchmark scienceqa: give --annotations (the folder with problems.json and pid_splits.json)");
  const json problems = parse_json_file(o.annotations + "/problems.json", "ScienceQA problems");
  const json splits = parse_json_file(o.annotations + "/pid_splits.json", "ScienceQA splits");
  if (!splits.contains(o.split) || !splits[o.split].is_array())
    fail(o.annotations, "/pid_splits.json: no split '", o.split, "'");
  std::set<std::string> in_split;
  for (const auto& p : splits[o.split]) in_split.insert(id_string(p));
  if (!file_exists(o.data)) fail(o.data, ": no such question file");
  read_json_records(
      o.data, "LLaVA ScienceQA questions",
      [&](size_t, const std::string& where, json& j) {
        if (o.limit > 0 && static_cast<int64_t>(b.items.size()) >= o.limit) return;
        if (!j.is_object() || !j.contains("id") || !j.contains("conversations") || !j["conversations"].is_array() ||
            j["conversations"].empty() || !j["conversations"][0].contains("value"))
          fail(o.data, ": ", where, ": expected {\"id\", \"conversations\": [{\"from\", \"value\"}, ...]}");
        Item it;
        it.question_id = j["id"];
        const std::string pid = id_string(j["id"]);
        // [sqa] model_vqa_science: the first turn without <image>, stripped; the option-letter
        // instruction after it (--single-pred-prompt, as LLaVA-1.5's sqa.sh runs it)
        std::string q = j["conversations"][0]["value"].get<std::string>();
        for (size_t p; (p = q.find("<image>")) != std::string::npos;) q.erase(p, 7);
        it.question = strip(q) + "\n" + kOptionLetter;
        it.instruction = kOptionLetter;
        it.image_name = j.value("image", std::string());
        it.image = resolve(o.image_dir, it.image_name);
        auto p = problems.find(pid);
        if (p == problems.end()) {
          it.error = "id " + pid + " is not in problems.json";
        } else {
          if (!in_split.count(pid)) it.error = "id " + pid + " is not in the '" + o.split + "' split";
          const int n = p->contains("choices") && (*p)["choices"].is_array() ? static_cast<int>((*p)["choices"].size()) : 0;
          const int ans = p->value("answer", -1);
          if (it.error.empty() && (n == 0 || ans < 0 || ans >= n)) it.error = "problem " + pid + " has no valid answer";
          it.gold = {{"answer", ans}, {"n_choices", n}};
          it.category = p->value("subject", std::string());
          it.l2_category = it.image_name.empty() ? "text" : "image";  // [sqa] IMG: the multimodal questions
        }
        check_image(it, o);
        b.items.push_back(std::move(it));
      },
      [&](size_t, const std::string& where, const std::string& msg) { fail(o.data, ": ", where, ": ", msg); });
  if (o.limit == 0 && b.items.size() != in_split.size())
    b.warnings.push_back("the question file has " + std::to_string(b.items.size()) + " questions, the '" + o.split +
                         "' split " + std::to_string(in_split.size()) + " (the official scorer counts the missing as wrong)");
  assign_ids(b.items);
  return b;
}

// ---------------------------------------------------------------- TextVQA
Benchmark load_textvqa(const LoadOptions& o) {
  Benchmark b;
  b.name = "textvqa";
  b.max_new_tokens = 128;
  if (o.annotations.empty()) fail("eval --benchmark textvqa: give --annotations (TextVQA_0.5.1_val.json)");
  const json ann = parse_json_file(o.annotations, "TextVQA annotations");
  if (!ann.contains("data") || !ann["data"].is_array()) fail(o.annotations, ": expected {\"data\": [...]} (TextVQA's layout)");
  // [tvqa] eval_single: annotations keyed by (image_id, question.lower())
  std::map<std::pair<std::string, std::string>, const json*> by_key;
  for (const auto& a : ann["data"]) {
    if (!a.contains("image_id") || !a.contains("question") || !a.contains("answers")) continue;
    by_key[{id_string(a["image_id"]), to_lower(a["question"].get<std::string>())}] = &a;
  }
  for (const auto& q : read_question_jsonl(o.data)) {
    Item it;
    it.question_id = q["question_id"];
    it.image_name = q.value("image", std::string());
    it.image = resolve(o.image_dir, it.image_name);
    const std::string text = q["text"].get<std::string>();
    it.question = with_instruction(text, kShortAnswer, &it.instruction);
    const std::string question = textvqa_prompt_question(it.question);
    it.answer_key = id_string(it.question_id) + "\n" + question;
    auto a = by_key.find({id_string(it.question_id), question});
    if (question.empty()) {
      it.error = "prompt has none of the shapes LLaVA's TextVQA scorer reads";
    } else if (a == by_key.end()) {
      it.error = "not in " + o.annotations + " (image_id " + id_string(it.question_id) + ", question '" + question + "')";
    } else {
      const json& ans = (*a->second)["answers"];
      if (!ans.is_array() || ans.size() != 10) it.error = "the annotation has " + std::to_string(ans.size()) + " answers, not 10";
      else it.gold = ans;
    }
    it.category = q.value("category", std::string("default"));
    check_image(it, o);
    b.items.push_back(std::move(it));
    if (o.limit > 0 && static_cast<int64_t>(b.items.size()) >= o.limit) break;
  }
  assign_ids(b.items);
  return b;
}

// ---------------------------------------------------------------- MMBench
std::vector<std::string> split_tab(const std::string& line) {
  std::vector<std::string> out;
  size_t a = 0;
  while (true) {
    size_t t = line.find('\t', a);
    out.push_back(line.substr(a, t == std::string::npos ? std::string::npos : t - a));
    if (t == std::string::npos) break;
    a = t + 1;
  }
  if (!out.empty() && !out.back().empty() && out.back().back() == '\r') out.back().pop_back();
  return out;
}

// [mmb] model_vqa_mmbench is_none: a missing option is NaN / "nan" / "none" (pandas reads an empty
// cell as NaN)
bool is_none(const std::string& v) {
  const std::string l = to_lower(strip(v));
  return l.empty() || l == "nan" || l == "none";
}

std::string image_ext(const std::string& bytes) {
  if (bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return ".png";
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8)
    return ".jpg";
  return ".img";
}

Benchmark load_mmbench(const LoadOptions& o) {
  Benchmark b;
  b.name = "mmbench";
  b.max_new_tokens = 128;
  std::ifstream f(o.data, std::ios::binary);
  if (!f) fail(o.data, ": cannot open the MMBench TSV");
  std::string line;
  if (!std::getline(f, line)) fail(o.data, ": empty file");
  const auto header = split_tab(line);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* need : {"index", "question", "A", "B", "answer"})
    if (!col.count(need)) fail(o.data, ": no '", need, "' column (MMBench's TSV: index, question, hint, A..D, answer, ...)");
  const bool has_image = col.count("image") > 0 && o.images;
  if (has_image && !o.image_cache.empty()) {
    std::error_code ec;
    fs::create_directories(o.image_cache, ec);
    if (ec) fail(o.image_cache, ": cannot create the image folder: ", ec.message());
  }
  struct Row {
    long long index = 0;
    std::string question, answer, category, l2, image, image_error;
    std::vector<std::string> options;
  };
  std::vector<Row> rows;
  std::map<std::string, std::string> image_of_index;  // VLMEvalKit's copies name their main row's index
  std::set<long long> groups_kept;
  size_t lineno = 1;
  bool pre_rotated = false;
  while (std::getline(f, line)) {
    ++lineno;
    if (strip(line).empty()) continue;
    const auto cells = split_tab(line);
    const std::string where = o.data + ":" + std::to_string(lineno);
    auto cell = [&](const std::string& name) -> std::string {
      auto c = col.find(name);
      return c == col.end() || c->second >= cells.size() ? std::string() : cells[c->second];
    };
    Row r;
    const std::string index = strip(cell("index"));
    try {
      size_t used = 0;
      r.index = std::stoll(index, &used);
      if (used != index.size()) throw std::invalid_argument(index);
    } catch (const std::exception&) {
      fail(where, ": index '", index, "' is not an integer");
    }
    // [mmb] circular copies are extra rows with index = main index + i * 1e6
    if (r.index >= 1000000) pre_rotated = true;
    const long long g = r.index % 1000000;
    if (o.limit > 0 && !groups_kept.count(g)) {
      if (static_cast<int64_t>(groups_kept.size()) >= o.limit) continue;
      groups_kept.insert(g);
    }
    // [mmb] get_options: A, B, C, D, ... in order up to the first missing one
    for (const char* L : {"A", "B", "C", "D", "E", "F", "G", "H", "I"}) {
      if (!col.count(L)) break;
      const std::string v = cell(L);
      if (is_none(v)) break;
      r.options.push_back(v);
    }
    r.question = cell("question");
    const std::string hint = cell("hint");
    if (!is_none(hint)) r.question = hint + "\n" + r.question;  // [mmb] hint + "\n" + question
    r.answer = strip(cell("answer"));
    r.category = cell("category");
    r.l2 = cell("l2-category");
    if (has_image) {
      std::string v = strip(cell("image"));
      if (v.size() <= 64 && image_of_index.count(v)) v = image_of_index[v];
      if (v.size() > 64) image_of_index[index] = v;
      try {
        const std::string bytes = base64_decode(v);
        r.image = (fs::path(o.image_cache.empty() ? "." : o.image_cache) / (std::to_string(g) + image_ext(bytes))).string();
        std::error_code ec;
        if (!file_exists(r.image) || fs::file_size(r.image, ec) != bytes.size()) {
          image_decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), where);  // throws if not an image
          write_file_atomic(r.image, bytes);
        }
      } catch (const Error& e) {
        r.image_error = std::string("undecodable image: ") + e.what();
        r.image.clear();
      }
    } else if (o.images && col.count("image_path")) {
      r.image = resolve(o.image_dir, strip(cell("image_path")));
    }
    rows.push_back(std::move(r));
  }
  std::map<long long, int> copies;  // pre-rotated: rows per group
  for (const auto& r : rows) ++copies[r.index % 1000000];
  for (const auto& r : rows) {
    const int n = static_cast<int>(r.options.size());
    int ans = -1;
    for (int i = 0; i < n; ++i)
      if (r.answer == std::string(1, static_cast<char>('A' + i))) ans = i;
    const long long g = r.index % 1000000;
    // [mmb] our own rotations (LLaVA --all-rounds, VLMEvalKit CIRCULAR): round k shows the options
    // rotated left by k and the answer moves with them; a pre-rotated TSV is asked as it is
    const int rounds = pre_rotated ? 1 : o.circular ? std::max(n, 1) : 1;
    for (int k = 0; k < rounds; ++k) {
      Item it;
      const int round = pre_rotated ? static_cast<int>(r.index / 1000000) : k;
      it.question_id = r.index;
      it.id = std::to_string(g) + "@" + std::to_string(round);
      it.answer_key = std::to_string(r.index) + "@" + std::to_string(k);
      it.image = r.image;
      it.image_name = r.image;
      it.category = r.category;
      it.l2_category = r.l2;
      std::string q = r.question;
      json opts = json::object();
      for (int i = 0; i < n; ++i) {
        const std::string L(1, static_cast<char>('A' + i));
        q += "\n" + L + ". " + r.options[static_cast<size_t>((i + k) % n)];
        opts[L] = r.options[static_cast<size_t>((i + k) % n)];
      }
      it.question = q + "\n" + kOptionLetter;
      it.instruction = kOptionLetter;
      const int shown = ans < 0 ? -1 : ((ans - k) % n + n) % n;
      it.gold = {{"index", std::to_string(g)}, {"round", round}, {"rounds", pre_rotated ? copies[g] : rounds},
                 {"options", opts}, {"answer", shown < 0 ? std::string() : std::string(1, static_cast<char>('A' + shown))}};
      if (n < 2) it.error = "fewer than two options";
      else if (ans < 0) it.error = "answer '" + r.answer + "' is not one of the options";
      else if (!r.image_error.empty()) it.error = r.image_error;
      b.items.push_back(std::move(it));
    }
  }
  return b;
}

// ---------------------------------------------------------------- open-ended
Benchmark load_open_ended(const LoadOptions& o, const std::string& name) {
  Benchmark b;
  b.name = name;
  b.open_ended = true;
  b.max_new_tokens = 1024;  // [vqa] model_vqa.py (LLaVA-Bench, MM-Vet)
  for (const auto& q : read_question_jsonl(o.data)) {
    Item it;
    it.question_id = q["question_id"];
    it.image_name = q.value("image", std::string());
    it.image = resolve(o.image_dir, it.image_name);
    it.question = strip(q["text"].get<std::string>());
    it.category = q.value("category", std::string());
    check_image(it, o);
    b.items.push_back(std::move(it));
    if (o.limit > 0 && static_cast<int64_t>(b.items.size()) >= o.limit) break;
  }
  assign_ids(b.items);
  return b;
}

// ---------------------------------------------------------------- scoring helpers
std::string pct(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << v;
  return s.str();
}

struct Tally {
  double sum = 0;
  int64_t n = 0;
  void add(double v) { sum += v, ++n; }
  double mean() const { return n ? 100.0 * sum / n : 0.0; }
};

// Python's str.split(' '): every single space separates (empty pieces kept)
std::vector<std::string> split_space(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (true) {
    size_t t = s.find(' ', a);
    out.push_back(s.substr(a, t == std::string::npos ? std::string::npos : t - a));
    if (t == std::string::npos) return out;
    a = t + 1;
  }
}

// Python's str.split(): runs of whitespace separate, no empty pieces
std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

// [tvqa] EvalAIAnswerProcessor.CONTRACTIONS, the 116 lower-case keys (its four capitalised keys,
// Id've I'dve Im Ive, never match: the words are lower-cased first). Values as written, oddities
// ("somebody'd" -> "somebodyd") included.
const std::map<std::string, std::string>& vqa_contractions() {
  static const std::map<std::string, std::string> m = {
      {"aint", "ain't"},
      {"arent", "aren't"},
      {"cant", "can't"},
      {"couldve", "could've"},
      {"couldnt", "couldn't"},
      {"couldn'tve", "couldn't've"},
      {"couldnt've", "couldn't've"},
      {"didnt", "didn't"},
      {"doesnt", "doesn't"},
      {"dont", "don't"},
      {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"},
      {"hadn'tve", "hadn't've"},
      {"hasnt", "hasn't"},
      {"havent", "haven't"},
      {"hed", "he'd"},
      {"hed've", "he'd've"},
      {"he'dve", "he'd've"},
      {"hes", "he's"},
      {"howd", "how'd"},
      {"howll", "how'll"},
      {"hows", "how's"},
      {"isnt", "isn't"},
      {"itd", "it'd"},
      {"itd've", "it'd've"},
      {"it'dve", "it'd've"},
      {"itll", "it'll"},
      {"let's", "let's"},
      {"maam", "ma'am"},
      {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"},
      {"mightn'tve", "mightn't've"},
      {"mightve", "might've"},
      {"mustnt", "mustn't"},
      {"mustve", "must've"},
      {"neednt", "needn't"},
      {"notve", "not've"},
      {"oclock", "o'clock"},
      {"oughtnt", "oughtn't"},
      {"ow's'at", "'ow's'at"},
      {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"},
      {"shant", "shan't"},
      {"shed've", "she'd've"},
      {"she'dve", "she'd've"},
      {"she's", "she's"},
      {"shouldve", "should've"},
      {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"},
      {"shouldn'tve", "shouldn't've"},
      {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"},
      {"somebody'dve", "somebody'd've"},
      {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"},
      {"someoned", "someone'd"},
      {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"},
      {"someonell", "someone'll"},
      {"someones", "someone's"},
      {"somethingd", "something'd"},
      {"somethingd've", "something'd've"},
      {"something'dve", "something'd've"},
      {"somethingll", "something'll"},
      {"thats", "that's"},
      {"thered", "there'd"},
      {"thered've", "there'd've"},
      {"there'dve", "there'd've"},
      {"therere", "there're"},
      {"theres", "there's"},
      {"theyd", "they'd"},
      {"theyd've", "they'd've"},
      {"they'dve", "they'd've"},
      {"theyll", "they'll"},
      {"theyre", "they're"},
      {"theyve", "they've"},
      {"twas", "'twas"},
      {"wasnt", "wasn't"},
      {"wed've", "we'd've"},
      {"we'dve", "we'd've"},
      {"weve", "we've"},
      {"werent", "weren't"},
      {"whatll", "what'll"},
      {"whatre", "what're"},
      {"whats", "what's"},
      {"whatve", "what've"},
      {"whens", "when's"},
      {"whered", "where'd"},
      {"wheres", "where's"},
      {"whereve", "where've"},
      {"whod", "who'd"},
      {"whod've", "who'd've"},
      {"who'dve", "who'd've"},
      {"wholl", "who'll"},
      {"whos", "who's"},
      {"whove", "who've"},
      {"whyll", "why'll"},
      {"whyre", "why're"},
      {"whys", "why's"},
      {"wont", "won't"},
      {"wouldve", "would've"},
      {"wouldnt", "wouldn't"},
      {"wouldnt've", "wouldn't've"},
      {"wouldn'tve", "wouldn't've"},
      {"yall", "y'all"},
      {"yall'll", "y'all'll"},
      {"y'allll", "y'all'll"},
      {"yall'd've", "y'all'd've"},
      {"y'alld've", "y'all'd've"},
      {"y'all'dve", "y'all'd've"},
      {"youd", "you'd"},
      {"youd've", "you'd've"},
      {"you'dve", "you'd've"},
      {"youll", "you'll"},
      {"youre", "you're"},
      {"youve", "you've"}};
  return m;
}

}  // namespace

// ---------------------------------------------------------------- rules

std::string pope_parse(const std::string& output) {
  // [pope] eval_pope: the first sentence (text before the first '.'), commas removed, split on
  // single spaces; "No", "not" or "no" among the words means no, anything else yes (an empty
  // output included). Case-sensitive, as written.
  std::string t = output;
  if (auto p = t.find('.'); p != std::string::npos) t = t.substr(0, p);
  t = replace_all(t, ",", "");
  for (const auto& w : split_space(t))
    if (w == "No" || w == "not" || w == "no") return "no";
  return "yes";
}

int scienceqa_parse(const std::string& output, int n_options) {
  // [sqa] options = A..E; the text itself a letter, or "X. ..." (a letter, then ". "), or exactly one
  // match of r'The answer is ([A-Z]).'; then get_pred_idx: the letter's index if it is among the
  // first len(choices) options, else -1 (FAILED, counted as wrong)
  static const std::string options = "ABCDE";
  std::string letter;
  if (output.size() == 1 && options.find(output[0]) != std::string::npos) {
    letter = output;
  } else if (output.size() >= 3 && options.find(output[0]) != std::string::npos && output.compare(1, 2, ". ") == 0) {
    letter = output.substr(0, 1);
  } else {
    static const std::regex re("The answer is ([A-Z]).");
    std::vector<std::string> found;
    for (auto m = std::sregex_iterator(output.begin(), output.end(), re); m != std::sregex_iterator(); ++m)
      found.push_back((*m)[1].str());
    if (found.size() == 1) letter = found[0];
  }
  if (letter.empty()) return -1;
  const auto i = options.find(letter);
  return i != std::string::npos && static_cast<int>(i) < std::min<int>(n_options, 5) ? static_cast<int>(i) : -1;
}

std::string textvqa_prompt_question(const std::string& prompt) {
  // [tvqa] prompt_processor: "OCR tokens: ... Question: Q Short answer:"; or three lines with
  // "Reference OCR token: " (the question the first line, or the second when the prompt starts
  // with the reference line); or two lines (the question first). Lower-cased.
  std::vector<std::string> lines;
  {
    size_t a = 0;
    while (true) {
      size_t t = prompt.find('\n', a);
      lines.push_back(prompt.substr(a, t == std::string::npos ? std::string::npos : t - a));
      if (t == std::string::npos) break;
      a = t + 1;
    }
  }
  std::string q;
  if (starts_with(prompt, "OCR tokens: ")) {
    const auto a = prompt.find("Question: ");
    const auto e = a == std::string::npos ? a : prompt.find(" Short answer:", a + 10);
    if (e == std::string::npos) return "";
    q = prompt.substr(a + 10, e - a - 10);
  } else if (prompt.find("Reference OCR token: ") != std::string::npos && lines.size() == 3) {
    q = starts_with(prompt, "Reference OCR token:") ? lines[1] : lines[0];
  } else if (lines.size() == 2) {
    q = lines[0];
  } else {
    return "";
  }
  return to_lower(q);
}

std::string vqa_normalize(const std::string& answer) {
  // [tvqa] EvalAIAnswerProcessor.__call__: word_tokenize, whitespace, punctuation, digits/articles
  static const std::map<std::string, std::string> number = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"}};
  static const std::set<std::string> articles = {"a", "an", "the"};
  static const std::vector<std::string> punct = {";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+",
                                                 "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"};
  const auto& contractions = vqa_contractions();
  // word_tokenize: lower, drop ',' and '?', "'s" -> " 's", strip
  std::string s = to_lower(answer);
  s = replace_all(replace_all(replace_all(s, ",", ""), "?", ""), "'s", " 's");
  s = strip(s);
  s = strip(replace_all(replace_all(s, "\n", " "), "\t", " "));
  // process_punctuation: a mark next to a space (in the input) is removed, elsewhere it becomes a
  // space (COMMA_STRIP cannot match: the commas are gone); then PERIOD_STRIP removes up to 32
  // periods not followed by a digit (re.sub's third argument is the count: re.UNICODE == 32)
  const std::string in = s;
  for (const auto& p : punct) {
    if (in.find(p + " ") != std::string::npos || in.find(" " + p) != std::string::npos) s = replace_all(s, p, "");
    else s = replace_all(s, p, " ");
  }
  {
    std::string out;
    int removed = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const bool digit_next = i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (s[i] == '.' && !digit_next && removed < 32) {
        ++removed;
        continue;
      }
      out += s[i];
    }
    s = out;
  }
  // process_digit_article: split on whitespace, number words to digits, articles dropped,
  // contractions restored, joined with single spaces
  std::vector<std::string> words;
  for (auto w : split_ws(to_lower(s))) {
    if (auto n = number.find(w); n != number.end()) w = n->second;
    if (!articles.count(w)) words.push_back(w);
  }
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    const auto c = contractions.find(words[i]);
    out += (i ? " " : "") + (c == contractions.end() ? words[i] : c->second);
  }
  return out;
}

double vqa_accuracy(const std::string& pred, const std::vector<std::string>& gt) {
  // [tvqa] TextVQAAccuracyEvaluator._compute_answer_scores: for each of the answers, the others
  // that equal the prediction, min(1, count / 3); the mean over the answers
  if (gt.empty()) return 0;
  double sum = 0;
  for (size_t i = 0; i < gt.size(); ++i) {
    int m = 0;
    for (size_t j = 0; j < gt.size(); ++j)
      if (j != i && gt[j] == pred) ++m;
    sum += std::min(1.0, m / 3.0);
  }
  return sum / static_cast<double>(gt.size());
}

std::string mmbench_extract(const std::string& output, const std::map<std::string, std::string>& options) {
  // [mmb] VLMEvalKit e8e78f0 can_infer = can_infer_option, else can_infer_text:
  //  can_infer_option: "Failed to obtain answer via API" -> nothing; a refusal -> 'Z'; the
  //  characters .()[],:;!*#{} become spaces, the text is split on whitespace; exactly one option
  //  letter among the words, first seen among the last four words -> that letter; no letter but a
  //  lone 'Z' -> 'Z'; else r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**" naming an option.
  //  can_infer_text: not when the output is longer than twice the options' texts together;
  //  exactly one option whose lower-cased text occurs in the lower-cased output -> its letter.
  // Nothing inferred: "" (exact matching counts it wrong).
  static const std::vector<std::string> refusals = {"Sorry, I can't help with images of people yet.",
                                                    "I can't process this file.",
                                                    "I'm sorry, but without the image provided",
                                                    "Cannot determine the answer"};
  if (output.find("Failed to obtain answer via API") != std::string::npos) return "";
  for (const auto& r : refusals)
    if (output.find(r) != std::string::npos) return "Z";
  std::string mod = output;
  for (char c : std::string(".()[],:;!*#{}")) std::replace(mod.begin(), mod.end(), c, ' ');
  const auto words = split_ws(mod);
  int count = 0;
  for (const auto& [L, text] : options)
    if (std::find(words.begin(), words.end(), L) != words.end()) ++count;
  if (count == 1) {
    for (const auto& [L, text] : options) {
      const auto w = std::find(words.begin(), words.end(), L);
      if (w != words.end() && static_cast<long>(w - words.begin()) > static_cast<long>(words.size()) - 5) return L;
    }
  } else if (count == 0 && std::find(words.begin(), words.end(), "Z") != words.end()) {
    return "Z";
  }
  static const std::regex answer_is(R"((?:correct\s+)?answer\s+is\s+\**([ABCD])\**)", std::regex::icase);
  std::smatch m;
  if (std::regex_search(output, m, answer_is)) {
    const std::string L = std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(m[1].str()[0]))));
    if (options.count(L)) return L;
  }
  size_t total = 0;
  for (const auto& [L, text] : options) total += text.size();
  if (output.size() > 2 * total) return "";
  const std::string low = to_lower(output);
  std::vector<std::string> cands;
  for (const auto& [L, text] : options)
    if (low.find(to_lower(text)) != std::string::npos) cands.push_back(L);
  return cands.size() == 1 ? cands[0] : "";
}

std::string base64_decode(const std::string& text) {
  static int8_t table[256];
  static bool init = false;
  if (!init) {
    std::fill(std::begin(table), std::end(table), static_cast<int8_t>(-1));
    const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < a.size(); ++i) table[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    init = true;
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0, chars = 0, pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad, ++chars;
      continue;
    }
    if (pad || table[c] < 0) fail("base64: invalid character at offset ", i);
    acc = (acc << 6) | static_cast<uint32_t>(table[c]);
    bits += 6;
    ++chars;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (chars == 0) fail("base64: empty");
  if (chars % 4 != 0 || pad > 2) fail("base64: length ", chars, " is not a multiple of 4");
  return out;
}

// ---------------------------------------------------------------- entry points

Benchmark load_benchmark(const LoadOptions& o) {
  if (o.data.empty()) fail("eval --benchmark ", o.benchmark, ": give the question file with --data");
  if (o.benchmark == "pope") return load_pope(o);
  if (o.benchmark == "scienceqa") return load_scienceqa(o);
  if (o.benchmark == "textvqa") return load_textvqa(o);
  if (o.benchmark == "mmbench") return load_mmbench(o);
  if (o.benchmark == "llava-bench" || o.benchmark == "mm-vet") return load_open_ended(o, o.benchmark);
  fail("eval: unknown benchmark '", o.benchmark, "' (pope, scienceqa, textvqa, mmbench, llava-bench, mm-vet, world, world-pref)");
}

Scored score_benchmark(const Benchmark& b, const std::map<std::string, Answer>& answers) {
  Scored s;
  std::vector<json> errors;
  std::map<std::string, Tally> cat, l2;
  Tally all;
  int64_t unparsed = 0, empty = 0;
  // POPE confusion counts per category ("yes" is the positive class)
  struct Conf { int64_t tp = 0, fp = 0, tn = 0, fn = 0; };
  std::map<std::string, Conf> conf;
  // MMBench: per source question, whether every round is right (and round 0 alone)
  struct Group { bool all = true; int seen = 0, rounds = 0; bool first = false; std::string category, l2; bool error = false; };
  std::map<std::string, Group> groups;
  std::vector<std::string> group_order;

  for (const auto& it : b.items) {
    json rec = {{"id", it.id}, {"question_id", it.question_id}, {"category", it.category}};
    auto a = answers.find(it.id);
    std::string why = it.error;
    if (why.empty() && a == answers.end()) why = "no answer";
    if (why.empty() && !b.open_ended && strip(a->second.text).empty()) {
      why = "empty output";
      ++empty;
    }
    if (a != answers.end()) rec["prompt"] = a->second.prompt, rec["output"] = a->second.text;
    if (b.name == "mmbench") {
      const std::string g = it.gold.value("index", it.id);
      if (!groups.count(g)) group_order.push_back(g);
      Group& G = groups[g];
      G.rounds = it.gold.value("rounds", 1);
      G.category = it.category, G.l2 = it.l2_category;
      if (!why.empty()) G.error = true;
    }
    if (!why.empty()) {
      rec["error"] = why;
      errors.push_back({{"id", it.id}, {"error", why}});
      s.per_item.push_back(std::move(rec));
      continue;
    }
    const std::string& out = a->second.text;
    double score = 0;
    if (b.open_ended) {
      s.per_item.push_back(std::move(rec));
      continue;
    } else if (b.name == "pope") {
      const std::string p = pope_parse(out);
      const std::string g = it.gold.get<std::string>();
      rec["parsed"] = p;
      score = p == g;
      Conf& c = conf[it.category];
      (p == "yes" ? (g == "yes" ? c.tp : c.fp) : (g == "no" ? c.tn : c.fn))++;
    } else if (b.name == "scienceqa") {
      const int p = scienceqa_parse(out, it.gold.value("n_choices", 0));
      if (p < 0) ++unparsed;
      rec["parsed"] = p < 0 ? std::string("FAILED") : std::string(1, static_cast<char>('A' + p));
      score = p == it.gold.value("answer", -2);
    } else if (b.name == "textvqa") {
      std::vector<std::string> gts;
      for (const auto& g : it.gold) gts.push_back(vqa_normalize(g.is_string() ? g.get<std::string>() : g.dump()));
      const std::string p = vqa_normalize(out);
      rec["parsed"] = p;
      score = vqa_accuracy(p, gts);
    } else if (b.name == "mmbench") {
      std::map<std::string, std::string> opts;
      for (auto& [k, v] : it.gold["options"].items()) opts[k] = v.get<std::string>();
      const std::string p = mmbench_extract(out, opts);
      if (p.empty()) ++unparsed;
      rec["parsed"] = p;
      score = p == it.gold.value("answer", std::string());
      Group& G = groups[it.gold.value("index", it.id)];
      G.all = G.all && score > 0;
      ++G.seen;
      if (it.gold.value("round", 0) == 0) G.first = score > 0;
      rec["round"] = it.gold.value("round", 0);
    }
    rec["correct"] = b.name == "textvqa" ? json(score) : json(score > 0);
    if (b.name != "mmbench") {
      all.add(score);
      if (!it.category.empty()) cat[it.category].add(score);
      if (!it.l2_category.empty()) l2[it.l2_category].add(score);
    }
    s.per_item.push_back(std::move(rec));
  }

  json& S = s.summary;
  S = {{"benchmark", b.name}, {"questions", static_cast<int64_t>(b.items.size())}};
  json metrics = json::object(), categories = json::object();
  std::ostringstream md;
  md << "## " << b.name << "\n\n";
  const int64_t n_err = static_cast<int64_t>(errors.size());
  if (b.open_ended) {
    metrics["answered"] = static_cast<int64_t>(b.items.size()) - n_err;
    md << static_cast<int64_t>(b.items.size()) - n_err << " of " << b.items.size()
       << " questions answered; judged outside stic (GPT judge, answers.jsonl"
       << (b.name == "mm-vet" ? ", mmvet_results.json" : "") << ").\n";
  } else if (b.name == "pope") {
    // [pope] eval_pope per category: accuracy, precision, recall, F1 ("yes" positive), yes-ratio;
    // the overall row pools the categories' counts
    md << "| category | questions | accuracy | precision | recall | F1 | yes-ratio |\n|---|---|---|---|---|---|---|\n";
    Conf tot;
    auto row = [&](const std::string& name, const Conf& c) {
      const double n = static_cast<double>(c.tp + c.fp + c.tn + c.fn);
      const double P = c.tp + c.fp ? static_cast<double>(c.tp) / (c.tp + c.fp) : 0.0;
      const double R = c.tp + c.fn ? static_cast<double>(c.tp) / (c.tp + c.fn) : 0.0;
      const double F = P + R > 0 ? 2 * P * R / (P + R) : 0.0;
      json m = {{"questions", c.tp + c.fp + c.tn + c.fn},
                {"accuracy", n ? 100.0 * (c.tp + c.tn) / n : 0.0},
                {"precision", 100.0 * P},
                {"recall", 100.0 * R},
                {"f1", 100.0 * F},
                {"yes_ratio", n ? 100.0 * (c.tp + c.fp) / n : 0.0},
                {"tp", c.tp}, {"fp", c.fp}, {"tn", c.tn}, {"fn", c.fn}};
      md << "| " << name << " | " << m["questions"] << " | " << pct(m["accuracy"]) << " | " << pct(m["precision"]) << " | "
         << pct(m["recall"]) << " | " << pct(m["f1"]) << " | " << pct(m["yes_ratio"]) << " |\n";
      return m;
    };
    for (const auto& [k, c] : conf) {
      categories[k] = row(k, c);
      tot.tp += c.tp, tot.fp += c.fp, tot.tn += c.tn, tot.fn += c.fn;
    }
    json m = row("all", tot);
    for (const char* k : {"accuracy", "precision", "recall", "f1", "yes_ratio"}) metrics[k] = m[k];
    if (!conf.empty()) {
      double f1 = 0;
      for (const auto& [k, v] : categories.items()) f1 += v["f1"].get<double>();
      metrics["f1_mean_over_categories"] = f1 / static_cast<double>(conf.size());
    }
  } else if (b.name == "mmbench") {
    Tally circ, vanilla;
    std::map<std::string, Tally> ccat, vcat, cl2;
    for (const auto& g : group_order) {
      const Group& G = groups[g];
      if (G.error) continue;  // counted among the errors
      const bool ok = G.all && G.seen == G.rounds;
      circ.add(ok), vanilla.add(G.first);
      if (!G.category.empty()) ccat[G.category].add(ok), vcat[G.category].add(G.first);
      if (!G.l2.empty()) cl2[G.l2].add(ok);
    }
    const bool circular = !groups.empty() && groups.begin()->second.rounds > 1;
    metrics["accuracy"] = circular ? circ.mean() : vanilla.mean();
    if (circular) metrics["circular_accuracy"] = circ.mean(), metrics["vanilla_accuracy"] = vanilla.mean();
    metrics["scored_questions"] = circ.n;
    md << "| category | questions | accuracy" << (circular ? " (circular) | vanilla |" : " |") << "\n|---|---|---|"
       << (circular ? "---|" : "") << "\n";
    md << "| all | " << circ.n << " | " << pct(metrics["accuracy"]) << (circular ? " | " + pct(vanilla.mean()) : "") << " |\n";
    for (const auto& [k, t] : ccat) {
      categories[k] = {{"questions", t.n}, {"accuracy", circular ? t.mean() : vcat[k].mean()}};
      if (circular) categories[k]["vanilla_accuracy"] = vcat[k].mean();
      md << "| " << k << " | " << t.n << " | " << pct(categories[k]["accuracy"])
         << (circular ? " | " + pct(vcat[k].mean()) : "") << " |\n";
    }
    if (!cl2.empty()) {
      json l2j = json::object();
      for (const auto& [k, t] : cl2) l2j[k] = {{"questions", t.n}, {"accuracy", t.mean()}};
      S["l2_categories"] = l2j;
    }
    metrics["unparsed_outputs"] = unparsed;
  } else {
    metrics["accuracy"] = all.mean();
    metrics["scored_questions"] = all.n;
    md << "| category | questions | accuracy |\n|---|---|---|\n| all | " << all.n << " | " << pct(all.mean()) << " |\n";
    if (b.name == "scienceqa") {
      // [sqa] IMG-Accuracy: the questions with an image
      metrics["img_accuracy"] = l2["image"].mean();
      metrics["unparsed_outputs"] = unparsed;
      md << "| image questions (IMG) | " << l2["image"].n << " | " << pct(l2["image"].mean()) << " |\n";
    }
    for (const auto& [k, t] : cat) {
      categories[k] = {{"questions", t.n}, {"accuracy", t.mean()}};
      if (cat.size() > 1) md << "| " << k << " | " << t.n << " | " << pct(t.mean()) << " |\n";
    }
  }
  S["metrics"] = metrics;
  if (!categories.empty()) S["categories"] = categories;
  json ids = json::array();
  for (size_t i = 0; i < errors.size() && i < 200; ++i) ids.push_back(errors[i]);
  std::map<std::string, int64_t> kinds;
  for (const auto& e : errors) {
    std::string k = e["error"].get<std::string>();
    k = k.substr(0, k.find_first_of(":('0123456789"));
    ++kinds[strip(k)];
  }
  S["errors"] = {{"count", n_err}, {"kinds", kinds}, {"items", ids}, {"empty_outputs", empty}};
  if (!b.warnings.empty()) S["warnings"] = b.warnings;
  if (n_err) {
    md << "\n" << n_err << " question(s) not scored (not in the accuracy):";
    for (const auto& [k, v] : kinds) md << " " << k << " " << v << ";";
    md << " ids in summary.json.\n";
  }
  s.markdown = md.str();
  return s;
}

}  // namespace stic::score
