#include "stic/world/text.h"

#include "stic/text/stic_prompts.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "stic/util/error.h"

namespace stic::world {

const char* const kShortAnswerSuffix = "\nAnswer the question using a single word or phrase.";
const char* const kOptionSuffix = "\nAnswer with the option's letter from the given choices directly.";

const std::vector<std::string>& normal_prompts() { return stic_normal_prompts(); }
const std::vector<std::string>& hallucination_prompts() { return stic_hallucination_prompts(); }
const std::string& step_by_step_prompt() { return stic_step_by_step_prompt(); }

const std::vector<std::string>& caption_prompts() {
  static const std::vector<std::string> v{"Describe the image briefly.", "Write a short caption for the image.",
                                          "Give a brief description of the picture.",
                                          "Summarize the image in one sentence."};
  return v;
}

const std::vector<std::string>& qa_types() {
  static const std::vector<std::string> v{"count", "color", "shape", "size", "position", "existence"};
  return v;
}

// ---------------------------------------------------------------- phrases
namespace {

std::string cap(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string join_and(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += (i + 1 == v.size()) ? " and " : ", ";
    s += v[i];
  }
  return s;
}

const std::string& shape_of(int i) { return shape_names()[static_cast<size_t>(i)]; }
std::string color_of(int i) { return object_colors()[static_cast<size_t>(i)].name; }
std::string category_name(int shape, int color) { return color_of(color) + " " + shape_of(shape); }

std::string count_phrase(int n) {
  if (n == 1) return "a single object";
  return number_word(n) + " objects";
}

std::string place_sentence(const WorldObject& o, Rng& rng) {
  const std::string np = object_phrase(o, true, true), pos = o.position();
  switch (rng.below(4)) {
    case 0: return "In the " + pos + " there is " + np + ".";
    case 1: return cap(np) + " sits in the " + pos + ".";
    case 2: return "There is " + np + " in the " + pos + ".";
    default: return cap(np) + " is in the " + pos + ".";
  }
}

// Objects (reading order) as place sentences, plus one occlusion sentence when an object is
// partly covered.
std::string body(const Scene& s, Rng& rng) {
  std::string out;
  for (int i : reading_order(s)) {
    if (!out.empty()) out += " ";
    out += place_sentence(s.objects[static_cast<size_t>(i)], rng);
  }
  for (size_t k = 0; k < s.objects.size(); ++k) {
    const auto& hidden = s.objects[k];
    if (hidden.visible >= 0.9) continue;
    // the nearest object drawn after it covers it
    int best = -1;
    double bd = 1e9;
    for (size_t j = k + 1; j < s.objects.size(); ++j) {
      const auto& o = s.objects[j];
      const double d = std::hypot(o.cx - hidden.cx, o.cy - hidden.cy) - o.radius - hidden.radius;
      if (d < bd) bd = d, best = static_cast<int>(j);
    }
    if (best < 0) continue;
    const auto& top = s.objects[static_cast<size_t>(best)];
    out += " The " + top.category() + " partly covers the " + hidden.category() + ".";
  }
  return out;
}

std::vector<std::string> present_colors(const Scene& s) {
  std::vector<std::string> out;
  for (int i : reading_order(s)) {
    std::string c = color_of(s.objects[static_cast<size_t>(i)].color);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

bool present(const Scene& s, int shape, int color) {
  for (const auto& o : s.objects)
    if (o.shape == shape && o.color == color) return true;
  return false;
}

int count_category(const Scene& s, int shape, int color) {
  int n = 0;
  for (const auto& o : s.objects) n += (o.shape == shape && o.color == color);
  return n;
}

}  // namespace

std::string number_word(int n) {
  static const char* w[] = {"zero", "one", "two", "three", "four", "five", "six",
                            "seven", "eight", "nine", "ten", "eleven", "twelve"};
  return (n >= 0 && n <= 12) ? w[n] : std::to_string(n);
}

std::string with_article(const std::string& p) {
  if (p.empty()) return p;
  const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(p[0])));
  return (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' ? "an " : "a ") + p;
}

std::string object_phrase(const WorldObject& o, bool with_size, bool article) {
  std::string p = (with_size ? size_names()[static_cast<size_t>(o.size)] + " " : std::string()) + o.category();
  return article ? with_article(p) : p;
}

std::string background_phrase(const Scene& s) {
  const std::string pat = background_patterns()[static_cast<size_t>(s.background.pattern)];
  const std::string col = background_colors()[static_cast<size_t>(s.background.color)].name;
  if (pat == "gradient") return with_article(col + " gradient background");
  return with_article(pat + " " + col + " background");
}

std::string short_caption(const Scene& s, Rng& rng) {
  std::vector<std::string> items;
  for (int i : reading_order(s)) items.push_back(object_phrase(s.objects[static_cast<size_t>(i)], false, true));
  const int n = static_cast<int>(s.objects.size());
  if (n > 1 && rng.chance(0.5))
    return cap(number_word(n)) + " objects on " + background_phrase(s) + ": " + join_and(items) + ".";
  return cap(join_and(items)) + " on " + background_phrase(s) + ".";
}

std::string grounded_caption(const Scene& s) {
  std::vector<std::string> items;
  for (int i : reading_order(s)) {
    const auto& o = s.objects[static_cast<size_t>(i)];
    items.push_back(object_phrase(o, true, true) + " in the " + o.position());
  }
  const int n = static_cast<int>(s.objects.size());
  return cap(number_word(n)) + (n == 1 ? " object" : " objects") + " on " + background_phrase(s) + ": " +
         join_and(items) + ".";
}

std::string detailed_description(const Scene& s, Rng& rng) {
  static const std::vector<std::string> openers{"The image shows", "The picture contains", "This image contains",
                                                "The scene shows"};
  return rng.pick(openers) + " " + count_phrase(static_cast<int>(s.objects.size())) + " on " + background_phrase(s) +
         ". " + body(s, rng);
}

std::string normal_response(const Scene& s, int i, Rng& rng) {
  static const std::vector<std::string> openers{
      "The picture shows",           "The image contains",       "The photograph depicts",
      "The key elements are",        "The composition consists of", "The scene is calm and simple. It shows",
      "The scene shows",             "The main focal points are"};
  if (i < 0 || i >= static_cast<int>(openers.size())) i = 0;
  std::string out = openers[static_cast<size_t>(i)] + " " + count_phrase(static_cast<int>(s.objects.size())) +
                    " on " + background_phrase(s) + ". " + body(s, rng);
  if (i == 5) out += " The mood is quiet and orderly.";
  return out;
}

std::string step_by_step_response(const Scene& s, Rng& rng) {
  const int n = static_cast<int>(s.objects.size());
  std::string out = "The main subjects of the image are " +
                    (n == 1 ? std::string("a single geometric shape") : number_word(n) + " geometric shapes") +
                    " on " + background_phrase(s) + ". " + body(s, rng);
  out += " The setting is abstract, neither indoors nor outdoors. The mood is calm and orderly.";
  out += " The dominant colors are " + join_and(present_colors(s)) + " against the " +
         background_colors()[static_cast<size_t>(s.background.color)].name + " background.";
  out += " The shapes are arranged on a simple grid, which makes the composition clear and balanced.";
  return out;
}

std::string hallucinated_response(const Scene& s, int prompt_index, Rng& rng, std::vector<WorldObject>* invented) {
  // absent categories, popular ones more likely (a model invents what it has often seen)
  const size_t nc = object_colors().size();
  const auto prior = category_prior();
  std::vector<double> w(prior.size());
  for (size_t k = 0; k < prior.size(); ++k)
    w[k] = present(s, static_cast<int>(k / nc), static_cast<int>(k % nc)) ? 0.0 : prior[k];
  std::set<int> used;
  for (const auto& o : s.objects) used.insert(o.row * 3 + o.col);
  std::vector<int> free_cells;
  for (int c = 0; c < 9; ++c)
    if (!used.count(c)) free_cells.push_back(c);
  rng.shuffle(free_cells);
  const int k = rng.range(1, 2);
  std::vector<WorldObject> made;
  for (int t = 0; t < k; ++t) {
    const int cat = rng.weighted(w);
    w[static_cast<size_t>(cat)] = 0;
    WorldObject o;
    o.shape = cat / static_cast<int>(nc);
    o.color = cat % static_cast<int>(nc);
    o.size = rng.below(3);
    const int cell = t < static_cast<int>(free_cells.size()) ? free_cells[static_cast<size_t>(t)] : rng.below(9);
    o.row = cell / 3;
    o.col = cell % 3;
    made.push_back(o);
  }
  std::string out = detailed_description(s, rng);
  static const std::vector<std::string> forms{"There is also {np} in the {pos}.",
                                              "{Np} is resting in the {pos} as well.",
                                              "In the {pos} there is also {np}.",
                                              "{Np} can also be seen in the {pos}."};
  for (const auto& o : made) {
    std::string f = rng.pick(forms);
    const std::string np = object_phrase(o, true, true);
    auto rep = [&](const std::string& key, const std::string& val) {
      const size_t p = f.find(key);
      if (p != std::string::npos) f.replace(p, key.size(), val);
    };
    rep("{np}", np);
    rep("{Np}", cap(np));
    rep("{pos}", o.position());
    out += " " + f;
  }
  static const std::vector<std::string> extra{
      "", "", "The shapes seem ready to be arranged into a larger pattern.",
      "Soft light falls evenly across the whole scene.", "It looks like part of a colorful puzzle."};
  const std::string e = (prompt_index % 2) ? rng.pick(extra) : std::string();
  if (!e.empty()) out += " " + e;
  if (invented) *invented = made;
  return out;
}

// ---------------------------------------------------------------- questions
namespace {

// Objects whose (shape, colour) category is unique in the scene.
std::vector<int> unique_objects(const Scene& s) {
  std::vector<int> out;
  for (size_t k = 0; k < s.objects.size(); ++k)
    if (count_category(s, s.objects[k].shape, s.objects[k].color) == 1) out.push_back(static_cast<int>(k));
  return out;
}

}  // namespace

std::vector<std::pair<int, int>> absent_categories(const Scene& s, const std::string& strategy, Rng& rng) {
  const int ns = static_cast<int>(shape_names().size()), nc = static_cast<int>(object_colors().size());
  const auto prior = category_prior();
  struct C {
    int shape, color;
    double score;
  };
  std::vector<C> cands;
  for (int sh = 0; sh < ns; ++sh)
    for (int co = 0; co < nc; ++co) {
      if (present(s, sh, co)) continue;
      double score = 0;
      const double pr = prior[static_cast<size_t>(sh * nc + co)];
      if (strategy == "random") score = rng.uniform();
      else if (strategy == "popular") score = pr;
      else if (strategy == "adversarial") {
        bool same_shape = false, same_color = false;
        for (const auto& o : s.objects) {
          same_shape |= o.shape == sh;
          same_color |= o.color == co;
        }
        score = (same_shape ? 2.0 : 0.0) + (same_color ? 1.0 : 0.0) + pr + 0.01 * rng.uniform();
      } else {
        fail("unknown POPE strategy '", strategy, "' (expected random, popular or adversarial)");
      }
      cands.push_back({sh, co, score});
    }
  std::stable_sort(cands.begin(), cands.end(), [](const C& a, const C& b) { return a.score > b.score; });
  std::vector<std::pair<int, int>> out;
  for (const auto& c : cands) out.emplace_back(c.shape, c.color);
  return out;
}

std::vector<QA> pope_questions(const Scene& s, const std::string& strategy, int n, Rng& rng) {
  std::vector<std::pair<int, int>> pos;
  for (int i : reading_order(s)) {
    const auto& o = s.objects[static_cast<size_t>(i)];
    if (std::find(pos.begin(), pos.end(), std::make_pair(o.shape, o.color)) == pos.end()) pos.emplace_back(o.shape, o.color);
  }
  rng.shuffle(pos);
  if (static_cast<int>(pos.size()) > n) pos.resize(static_cast<size_t>(n));
  auto neg = absent_categories(s, strategy, rng);
  neg.resize(std::min(neg.size(), pos.size()));
  std::vector<QA> out;
  auto q = [&](int sh, int co, const char* label) {
    QA a;
    a.type = "pope";
    a.pope = strategy;
    a.question = "Is there " + with_article(category_name(sh, co)) + " in the image?";
    a.answer = label;
    out.push_back(a);
  };
  for (size_t i = 0; i < pos.size(); ++i) {  // interleave yes / no
    q(pos[i].first, pos[i].second, "yes");
    q(neg[i].first, neg[i].second, "no");
  }
  return out;
}

QA make_qa(const Scene& s, const std::string& type, Rng& rng) {
  QA q;
  q.type = type;
  const auto& objs = s.objects;
  const auto& target = objs[static_cast<size_t>(rng.below(static_cast<int>(objs.size())))];
  if (type == "count") {
    const int mode = rng.below(3);
    if (mode == 0) {
      q.question = "How many objects are there in the image?";
      q.answer = std::to_string(objs.size());
    } else if (mode == 1) {
      const int color = rng.chance(0.75) ? target.color : rng.below(static_cast<int>(object_colors().size()));
      int n = 0;
      for (const auto& o : objs) n += o.color == color;
      q.question = "How many " + color_of(color) + " objects are there?";
      q.answer = std::to_string(n);
    } else {
      const int shape = rng.chance(0.75) ? target.shape : rng.below(static_cast<int>(shape_names().size()));
      int n = 0;
      for (const auto& o : objs) n += o.shape == shape;
      q.question = "How many " + shape_plurals()[static_cast<size_t>(shape)] + " are there?";
      q.answer = std::to_string(n);
    }
  } else if (type == "color") {
    q.question = "What color is the " + shape_of(target.shape) + " in the " + target.position() + "?";
    q.answer = color_of(target.color);
  } else if (type == "shape") {
    q.question = rng.chance(0.5) ? "What shape is the " + color_of(target.color) + " object in the " + target.position() + "?"
                                 : "What shape is in the " + target.position() + "?";
    q.answer = shape_of(target.shape);
  } else if (type == "size") {
    q.question = "What size is the " + target.category() + " in the " + target.position() + "?";
    q.answer = size_names()[static_cast<size_t>(target.size)];
  } else if (type == "position") {
    auto uniq = unique_objects(s);
    const auto& o = uniq.empty() ? target : objs[static_cast<size_t>(rng.pick(uniq))];
    q.question = uniq.empty() ? "Where is the " + object_phrase(o, true, false) + "?" : "Where is the " + o.category() + "?";
    q.answer = o.position();
  } else if (type == "existence") {
    if (rng.chance(0.5)) {
      q.question = "Is there " + with_article(target.category()) + " in the image?";
      q.answer = "Yes";
    } else {
      static const std::vector<std::string> strat{"random", "popular", "adversarial"};
      auto neg = absent_categories(s, rng.pick(strat), rng);
      const auto& c = neg[static_cast<size_t>(rng.below(static_cast<int>(std::min<size_t>(3, neg.size()))))];
      q.question = "Is there " + with_article(category_name(c.first, c.second)) + " in the image?";
      q.answer = "No";
    }
  } else {
    fail("unknown question type '", type, "' (expected count, color, shape, size, position or existence)");
  }
  return q;
}

QA make_choice(const Scene& s, Rng& rng) {
  QA q;
  q.type = "choice";
  const auto& objs = s.objects;
  const auto& target = objs[static_cast<size_t>(rng.below(static_cast<int>(objs.size())))];
  std::string correct;
  std::vector<std::string> pool;
  static const std::vector<std::string> cats{"count", "color", "shape", "position", "existence"};
  q.category = rng.pick(cats);
  if (q.category == "count") {
    q.question = "How many objects are there in the image?";
    correct = std::to_string(objs.size());
    for (int n = 1; n <= 9; ++n)
      if (std::abs(n - static_cast<int>(objs.size())) <= 3) pool.push_back(std::to_string(n));
  } else if (q.category == "color") {
    q.question = "What color is the " + shape_of(target.shape) + " in the " + target.position() + "?";
    correct = color_of(target.color);
    for (const auto& c : object_colors()) pool.push_back(c.name);
  } else if (q.category == "shape") {
    q.question = "Which shape is in the " + target.position() + "?";
    correct = shape_of(target.shape);
    pool = shape_names();
  } else if (q.category == "position") {
    auto uniq = unique_objects(s);
    const auto& o = uniq.empty() ? target : objs[static_cast<size_t>(rng.pick(uniq))];
    q.question = uniq.empty() ? "Where is the " + object_phrase(o, true, false) + "?" : "Where is the " + o.category() + "?";
    correct = o.position();
    pool = position_names();
  } else {
    q.question = "Which of these objects appears in the image?";
    correct = with_article(target.category());
    auto neg = absent_categories(s, "adversarial", rng);
    for (size_t i = 0; i < std::min<size_t>(6, neg.size()); ++i)
      pool.push_back(with_article(category_name(neg[i].first, neg[i].second)));
  }
  pool.erase(std::remove(pool.begin(), pool.end(), correct), pool.end());
  rng.shuffle(pool);
  q.options = {correct};
  for (size_t i = 0; i < pool.size() && q.options.size() < 4; ++i) q.options.push_back(pool[i]);
  rng.shuffle(q.options);
  const size_t at = static_cast<size_t>(std::find(q.options.begin(), q.options.end(), correct) - q.options.begin());
  q.answer = std::string(1, static_cast<char>('A' + at));
  return q;
}

std::string choice_text(const QA& q) {
  std::string s = q.question;
  for (size_t i = 0; i < q.options.size(); ++i) s += "\n" + std::string(1, static_cast<char>('A' + i)) + ". " + q.options[i];
  return s;
}

}  // namespace stic::world
