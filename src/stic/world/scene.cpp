#include "stic/world/scene.h"

#include <algorithm>
#include <cmath>

#include "stic/util/error.h"

namespace stic::world {

using nlohmann::json;

int Rng::weighted(const std::vector<double>& w) {
  double total = 0;
  for (double x : w) total += x;
  double r = uniform() * total;
  for (size_t i = 0; i < w.size(); ++i) {
    if (r < w[i]) return static_cast<int>(i);
    r -= w[i];
  }
  return static_cast<int>(w.size()) - 1;
}

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  Rng r(seed ^ (a * 0xD6E8FEB86659FD93ull) ^ (b * 0xA0761D6478BD642Full));
  r.next();
  return r.next();
}

// ---------------------------------------------------------------- vocabulary
const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> v{"circle", "square", "triangle", "star", "heart", "diamond", "hexagon", "cross"};
  return v;
}
const std::vector<std::string>& shape_plurals() {
  static const std::vector<std::string> v{"circles", "squares", "triangles", "stars", "hearts", "diamonds", "hexagons", "crosses"};
  return v;
}
const std::vector<ColorDef>& object_colors() {
  static const std::vector<ColorDef> v{{"red", {215, 35, 35}},    {"orange", {250, 140, 20}}, {"yellow", {245, 225, 40}},
                                       {"green", {40, 170, 60}},  {"blue", {35, 85, 225}},    {"purple", {140, 55, 200}},
                                       {"pink", {250, 130, 190}}, {"white", {245, 245, 245}}};
  return v;
}
const std::vector<std::string>& size_names() {
  static const std::vector<std::string> v{"small", "medium", "large"};
  return v;
}
const std::vector<ColorDef>& background_colors() {
  static const std::vector<ColorDef> v{{"black", {18, 18, 18}}, {"dark gray", {70, 70, 70}}, {"gray", {120, 120, 120}},
                                       {"navy", {25, 35, 85}},  {"brown", {100, 70, 45}},    {"dark green", {25, 70, 40}}};
  return v;
}
const std::vector<std::string>& background_patterns() {
  static const std::vector<std::string> v{"plain", "noisy", "gradient", "striped", "checkered"};
  return v;
}

std::string position_name(int row, int col) {
  static const char* rows[] = {"top", "middle", "bottom"};
  static const char* cols[] = {"left", "center", "right"};
  if (row == 1 && col == 1) return "center";
  if (col == 1) return std::string(rows[row]) + " center";
  return std::string(rows[row]) + " " + cols[col];
}
const std::vector<std::string>& position_names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) out.push_back(position_name(r, c));
    return out;
  }();
  return v;
}
int position_index(const std::string& name) {
  const auto& v = position_names();
  auto it = std::find(v.begin(), v.end(), name);
  return it == v.end() ? -1 : static_cast<int>(it - v.begin());
}

const std::vector<double>& shape_prior() {
  static const std::vector<double> v{1.6, 1.4, 1.2, 1.0, 0.8, 0.8, 0.6, 0.6};
  return v;
}
std::vector<double> color_prior(int shape) {
  std::vector<double> w(object_colors().size(), 1.0);
  // each shape has typical colours (indices into object_colors)
  static const std::vector<std::vector<std::pair<int, double>>> typical{
      {{0, 2.0}}, {{4, 2.0}}, {{3, 2.0}}, {{2, 3.0}}, {{6, 2.0}, {0, 1.0}}, {{5, 2.0}}, {{1, 2.0}}, {{7, 2.0}}};
  for (auto [c, extra] : typical[static_cast<size_t>(shape)]) w[static_cast<size_t>(c)] += extra;
  return w;
}
std::vector<double> category_prior() {
  const size_t ns = shape_names().size(), nc = object_colors().size();
  std::vector<double> out(ns * nc);
  double st = 0;
  for (double x : shape_prior()) st += x;
  for (size_t s = 0; s < ns; ++s) {
    auto cw = color_prior(static_cast<int>(s));
    double ct = 0;
    for (double x : cw) ct += x;
    for (size_t c = 0; c < nc; ++c) out[s * nc + c] = shape_prior()[s] / st * cw[c] / ct;
  }
  return out;
}

std::string WorldObject::category() const {
  return std::string(object_colors()[static_cast<size_t>(color)].name) + " " + shape_names()[static_cast<size_t>(shape)];
}

// ---------------------------------------------------------------- geometry
namespace {

struct Pt {
  double x, y;
};

std::vector<Pt> regular(int n, double r, double phase) {
  std::vector<Pt> v;
  for (int i = 0; i < n; ++i) {
    const double a = phase + 2 * M_PI * i / n;
    v.push_back({r * std::cos(a), r * std::sin(a)});
  }
  return v;
}

const std::vector<std::vector<Pt>>& polygons() {
  static const std::vector<std::vector<Pt>> v = [] {
    std::vector<std::vector<Pt>> p(8);
    p[2] = {{0, -1}, {1, 0.8}, {-1, 0.8}};                  // triangle
    p[5] = {{0, -1}, {0.75, 0}, {0, 1}, {-0.75, 0}};        // diamond
    p[6] = regular(6, 1.0, 0);                              // hexagon
    for (int i = 0; i < 10; ++i) {                          // star
      const double a = -M_PI / 2 + M_PI * i / 5, r = (i % 2) ? 0.45 : 1.0;
      p[3].push_back({r * std::cos(a), r * std::sin(a)});
    }
    return p;
  }();
  return v;
}

bool in_polygon(const std::vector<Pt>& poly, double x, double y) {
  bool in = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    if ((poly[i].y > y) != (poly[j].y > y) &&
        x < (poly[j].x - poly[i].x) * (y - poly[i].y) / (poly[j].y - poly[i].y) + poly[i].x)
      in = !in;
  }
  return in;
}

// Is the local point (u, v) (units of the radius, y down, unrotated) inside the shape?
bool inside_shape(int shape, double u, double v) {
  switch (shape) {
    case 0: return u * u + v * v <= 1.0;
    case 1: return std::fabs(u) <= 0.82 && std::fabs(v) <= 0.82;
    case 4: {  // heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up
      const double x = u * 1.15, y = -v * 1.15 + 0.12;
      const double a = x * x + y * y - 1;
      return a * a * a - x * x * y * y * y <= 0;
    }
    case 7: {
      const double au = std::fabs(u), av = std::fabs(v);
      return (au <= 0.33 && av <= 0.95) || (av <= 0.33 && au <= 0.95);
    }
    default: return in_polygon(polygons()[static_cast<size_t>(shape)], u, v);
  }
}

struct Placed {
  double cx, cy, r, cosr, sinr;
  int shape;
  bool contains(double x, double y) const {  // pixel-space point
    const double dx = (x - cx) / r, dy = (y - cy) / r;
    const double u = cosr * dx + sinr * dy, v = -sinr * dx + cosr * dy;
    if (u * u + v * v > 1.7) return false;
    return inside_shape(shape, u, v);
  }
};

Placed placed(const WorldObject& o, int size) {
  return {o.cx * size, o.cy * size, o.radius * size, std::cos(o.rotation), std::sin(o.rotation), o.shape};
}

uint8_t clamp8(double v) { return static_cast<uint8_t>(std::lround(std::min(255.0, std::max(0.0, v)))); }

uint64_t hash3(uint64_t s, uint64_t x, uint64_t y) {
  uint64_t z = s ^ (x * 0x9E3779B97F4A7C15ull) ^ (y * 0xC2B2AE3D27D4EB4Full);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double noise(uint64_t s, int x, int y) {  // [-1, 1)
  return static_cast<double>(hash3(s, static_cast<uint64_t>(x), static_cast<uint64_t>(y)) >> 11) *
             (2.0 / 9007199254740992.0) - 1.0;
}

}  // namespace

std::vector<double> visible_fractions(const Scene& s) {
  const int n = s.size;
  std::vector<int> top(static_cast<size_t>(n * n), -1);
  std::vector<int> area(s.objects.size(), 0), vis(s.objects.size(), 0);
  for (size_t k = 0; k < s.objects.size(); ++k) {
    const Placed p = placed(s.objects[k], n);
    const int x0 = std::max(0, static_cast<int>(p.cx - 1.3 * p.r)), x1 = std::min(n - 1, static_cast<int>(p.cx + 1.3 * p.r) + 1);
    const int y0 = std::max(0, static_cast<int>(p.cy - 1.3 * p.r)), y1 = std::min(n - 1, static_cast<int>(p.cy + 1.3 * p.r) + 1);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x)
        if (p.contains(x + 0.5, y + 0.5)) {
          ++area[k];
          top[static_cast<size_t>(y * n + x)] = static_cast<int>(k);
        }
  }
  for (int t : top)
    if (t >= 0) ++vis[static_cast<size_t>(t)];
  std::vector<double> out;
  for (size_t k = 0; k < s.objects.size(); ++k) out.push_back(area[k] ? static_cast<double>(vis[k]) / area[k] : 0.0);
  return out;
}

std::vector<int> reading_order(const Scene& s) {
  std::vector<int> idx(s.objects.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) {
    const auto& A = s.objects[static_cast<size_t>(a)];
    const auto& B = s.objects[static_cast<size_t>(b)];
    return A.row * 3 + A.col < B.row * 3 + B.col;
  });
  return idx;
}

static double round4(double x) { return std::round(x * 1e4) / 1e4; }

// The centre (fraction of the side) of the `snap`-pixel grid cell nearest to `c` among those whose
// centre lies in grid third `cell` and keeps an object of radius `r` inside the image (nearest to
// the image's edge range if none does; c itself if the grid is coarser than a third).
static double snap_centre(double c, double r, int cell, int size, int snap) {
  double best = c, best_d = 1e9;
  for (int k = 0; (k + 0.5) * snap < size; ++k) {
    const double x = (k + 0.5) * snap / size;
    if (x < cell / 3.0 || x >= (cell + 1) / 3.0) continue;
    const double d = std::fabs(x - c) + (x < r - 1e-9 || x > 1 - r + 1e-9 ? 1.0 : 0.0);  // prefer inside the image
    if (d < best_d) best = x, best_d = d;
  }
  return round4(best);
}

Scene sample_scene(Rng& rng, const SceneParams& p) {
  Scene s;
  s.size = p.size;
  const auto& bgc = background_colors();
  s.background.color = rng.below(static_cast<int>(bgc.size()));
  s.background.pattern = rng.below(static_cast<int>(background_patterns().size()));
  for (int c = 0; c < 3; ++c)
    s.background.rgb[static_cast<size_t>(c)] = clamp8(bgc[static_cast<size_t>(s.background.color)].rgb[static_cast<size_t>(c)] + rng.uniform(-8, 8));
  s.background.noise_seed = rng.next() >> 12;  // fits a JSON double exactly

  const int max_obj = std::min(9, std::max(p.min_objects, p.max_objects));
  const int n = rng.range(std::max(1, p.min_objects), max_obj);
  static const double base_r[] = {0.075, 0.11, 0.145};
  for (int attempt = 0; attempt < 30; ++attempt) {
    std::vector<int> cells(9);
    for (int i = 0; i < 9; ++i) cells[static_cast<size_t>(i)] = i;
    rng.shuffle(cells);
    s.objects.clear();
    for (int k = 0; k < n; ++k) {
      WorldObject o;
      o.shape = rng.weighted(shape_prior());
      o.color = rng.weighted(color_prior(o.shape));
      o.size = rng.weighted({0.35, 0.35, 0.30});
      o.row = cells[static_cast<size_t>(k)] / 3;
      o.col = cells[static_cast<size_t>(k)] % 3;
      o.radius = round4(base_r[o.size] * rng.uniform(0.92, 1.08));
      const double slack = std::max(0.0, 1.0 / 6 - o.radius * 0.9) + p.overlap_jitter;
      o.cx = round4(std::min(1 - o.radius, std::max(o.radius, (o.col + 0.5) / 3 + rng.uniform(-slack, slack))));
      o.cy = round4(std::min(1 - o.radius, std::max(o.radius, (o.row + 0.5) / 3 + rng.uniform(-slack, slack))));
      if (p.snap > 0) {
        o.cx = snap_centre(o.cx, o.radius, o.col, p.size, p.snap);
        o.cy = snap_centre(o.cy, o.radius, o.row, p.size, p.snap);
      }
      o.rotation = round4(o.shape == 0 ? 0.0 : rng.uniform(-0.3, 0.3));
      for (int c = 0; c < 3; ++c)
        o.rgb[static_cast<size_t>(c)] = clamp8(object_colors()[static_cast<size_t>(o.color)].rgb[static_cast<size_t>(c)] + rng.uniform(-14, 14));
      s.objects.push_back(o);
    }
    auto vis = visible_fractions(s);
    bool ok = std::all_of(vis.begin(), vis.end(), [&](double v) { return v >= p.min_visible; });
    if (ok || attempt == 29) {
      if (!ok) {  // last resort: drop the objects that break the rule (keeps the count >= 1)
        std::vector<WorldObject> kept;
        for (size_t k = 0; k < s.objects.size(); ++k)
          if (vis[k] >= p.min_visible || (kept.empty() && k + 1 == s.objects.size())) kept.push_back(s.objects[k]);
        s.objects = kept;
        vis = visible_fractions(s);
      }
      for (size_t k = 0; k < s.objects.size(); ++k) s.objects[k].visible = round4(vis[k]);
      break;
    }
  }
  return s;
}

Image render_scene(Scene& s) {
  const int n = s.size;
  Image im;
  im.width = im.height = n;
  im.rgb.assign(static_cast<size_t>(n * n * 3), 0);
  const auto& bg = s.background;
  const uint64_t ns = bg.noise_seed;
  const int period = std::max(4, n / 8), cell = std::max(4, n / 6);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      double f = 1.0, amp = 4.0;
      switch (bg.pattern) {
        case 1: amp = 22.0; break;                                                   // noisy
        case 2: f = 0.55 + 0.9 * (y + 0.5) / n; break;                               // gradient
        case 3: f = (((x + y) / period) % 2) ? 0.65 : 1.25; break;                   // striped
        case 4: f = (((x / cell) + (y / cell)) % 2) ? 0.65 : 1.25; break;            // checkered
        default: break;
      }
      const double e = noise(ns, x, y) * amp;
      for (int c = 0; c < 3; ++c)
        im.rgb[static_cast<size_t>((y * n + x) * 3 + c)] = clamp8(bg.rgb[static_cast<size_t>(c)] * f + 6.0 * (f - 1.0) + e);
    }
  for (const auto& o : s.objects) {
    const Placed p = placed(o, n);
    const int x0 = std::max(0, static_cast<int>(p.cx - 1.3 * p.r)), x1 = std::min(n - 1, static_cast<int>(p.cx + 1.3 * p.r) + 1);
    const int y0 = std::max(0, static_cast<int>(p.cy - 1.3 * p.r)), y1 = std::min(n - 1, static_cast<int>(p.cy + 1.3 * p.r) + 1);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        int hit = 0;
        for (int sy = 0; sy < 4; ++sy)
          for (int sx = 0; sx < 4; ++sx) hit += p.contains(x + (sx + 0.5) / 4, y + (sy + 0.5) / 4);
        if (!hit) continue;
        const double a = hit / 16.0;
        // a little shading: lighter towards the top
        const double shade = 1.0 + 0.12 * ((p.cy - (y + 0.5)) / p.r);
        uint8_t* px = &im.rgb[static_cast<size_t>((y * n + x) * 3)];
        for (int c = 0; c < 3; ++c) px[c] = clamp8(px[c] * (1 - a) + std::min(255.0, o.rgb[static_cast<size_t>(c)] * shade) * a);
      }
  }
  auto vis = visible_fractions(s);
  for (size_t k = 0; k < s.objects.size(); ++k) s.objects[k].visible = round4(vis[k]);
  return im;
}

// ---------------------------------------------------------------- JSON
namespace {
int index_of(const std::vector<std::string>& v, const std::string& name) {
  auto it = std::find(v.begin(), v.end(), name);
  return it == v.end() ? -1 : static_cast<int>(it - v.begin());
}
int color_index(const std::vector<ColorDef>& v, const std::string& name) {
  for (size_t i = 0; i < v.size(); ++i)
    if (name == v[i].name) return static_cast<int>(i);
  return -1;
}
}  // namespace

json scene_to_json(const Scene& s) {
  json objs = json::array();
  for (const auto& o : s.objects)
    objs.push_back({{"shape", shape_names()[static_cast<size_t>(o.shape)]},
                    {"color", object_colors()[static_cast<size_t>(o.color)].name},
                    {"size", size_names()[static_cast<size_t>(o.size)]},
                    {"position", o.position()},
                    {"row", o.row},
                    {"col", o.col},
                    {"cx", o.cx},
                    {"cy", o.cy},
                    {"radius", o.radius},
                    {"rotation", o.rotation},
                    {"rgb", o.rgb},
                    {"visible", o.visible}});
  return {{"id", s.id},
          {"pool", s.pool},
          {"image", s.image},
          {"width", s.size},
          {"height", s.size},
          {"background",
           {{"color", background_colors()[static_cast<size_t>(s.background.color)].name},
            {"pattern", background_patterns()[static_cast<size_t>(s.background.pattern)]},
            {"rgb", s.background.rgb},
            {"noise_seed", s.background.noise_seed}}},
          {"objects", objs}};
}

Scene scene_from_json(const json& j, const std::string& where) {
  try {
    Scene s;
    s.id = j.at("id").get<std::string>();
    s.pool = j.value("pool", std::string());
    s.image = j.value("image", std::string());
    s.size = j.at("width").get<int>();
    const auto& b = j.at("background");
    s.background.color = color_index(background_colors(), b.at("color").get<std::string>());
    s.background.pattern = index_of(background_patterns(), b.at("pattern").get<std::string>());
    if (s.background.color < 0 || s.background.pattern < 0) fail(where, ": unknown background ", b.dump());
    s.background.rgb = b.at("rgb").get<std::array<uint8_t, 3>>();
    s.background.noise_seed = b.value("noise_seed", uint64_t{0});
    for (const auto& oj : j.at("objects")) {
      WorldObject o;
      o.shape = index_of(shape_names(), oj.at("shape").get<std::string>());
      o.color = color_index(object_colors(), oj.at("color").get<std::string>());
      o.size = index_of(size_names(), oj.at("size").get<std::string>());
      if (o.shape < 0 || o.color < 0 || o.size < 0) fail(where, ": object with unknown attributes ", oj.dump());
      o.row = oj.at("row").get<int>();
      o.col = oj.at("col").get<int>();
      if (o.row < 0 || o.row > 2 || o.col < 0 || o.col > 2) fail(where, ": object outside the 3x3 grid ", oj.dump());
      o.cx = oj.value("cx", (o.col + 0.5) / 3);
      o.cy = oj.value("cy", (o.row + 0.5) / 3);
      o.radius = oj.value("radius", 0.1);
      o.rotation = oj.value("rotation", 0.0);
      if (oj.contains("rgb")) o.rgb = oj.at("rgb").get<std::array<uint8_t, 3>>();
      o.visible = oj.value("visible", 1.0);
      s.objects.push_back(o);
    }
    return s;
  } catch (const json::exception& e) {
    fail(where, ": not a world scene (", e.what(), ")");
  }
}

CellLabels cell_labels(const Scene& s, const std::string& where) {
  CellLabels l;
  for (const auto& o : s.objects) {
    if (o.row < 0 || o.row > 2 || o.col < 0 || o.col > 2)
      fail(where, ": object outside the 3x3 grid (row ", o.row, ", col ", o.col, ")");
    const size_t cell = static_cast<size_t>(o.row * 3 + o.col);
    l.shape[cell] = o.shape + 1;
    l.color[cell] = o.color + 1;
  }
  return l;
}

}  // namespace stic::world
