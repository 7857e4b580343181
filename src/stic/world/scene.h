// stic/world/scene.h — the built-in world's scenes: vocabulary, sampling, rendering, JSON.
//
// A scene is a background (colour + pattern) and 1..N flat objects, each with a shape, a colour,
// a size and a place on a 3x3 grid (top/middle/bottom x left/center/right). Every object has its
// own grid cell, so "the object in the top left" names exactly one object. Objects are drawn in
// order (later ones on top) with a small jitter that can make neighbours overlap; a scene whose
// objects would be hidden too much is re-sampled (occlusion rule: every object keeps at least
// `min_visible` of its area visible). Everything is driven by a seeded splitmix64 stream, never
// by std:: distributions, so the same seed gives the same bytes on every platform.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/image/image.h"
#include "stic/util/rng.h"

namespace stic::world {

// ---------------------------------------------------------------- deterministic random numbers
// A splitmix64 stream (util/rng.h): tiny, fast, good enough for procedural content, identical
// everywhere.
class Rng : public SplitMix64 {
 public:
  explicit Rng(uint64_t seed) : SplitMix64(seed) {}
  using SplitMix64::uniform;                                                        // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }  // [0, n)
  int range(int lo, int hi) { return lo + below(hi - lo + 1); }                      // [lo, hi]
  bool chance(double p) { return uniform() < p; }
  // An index drawn with the given (non-negative) weights.
  int weighted(const std::vector<double>& w);
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int>(i)))]);
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(below(static_cast<int>(v.size())))]; }
};
// A well-mixed seed for stream `a`/`b` of `seed` (independent streams per image and purpose).
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

// ---------------------------------------------------------------- vocabulary
struct ColorDef {
  const char* name;
  std::array<uint8_t, 3> rgb;
};
const std::vector<std::string>& shape_names();         // circle, square, ...
const std::vector<std::string>& shape_plurals();       // circles, squares, ...
const std::vector<ColorDef>& object_colors();          // red, orange, ...
const std::vector<std::string>& size_names();          // small, medium, large
const std::vector<ColorDef>& background_colors();      // black, dark gray, ...
const std::vector<std::string>& background_patterns(); // plain, noisy, gradient, striped, checkered
// "top left", "top center", "top right", "middle left", "center", ... (row 0 = top, col 0 = left)
std::string position_name(int row, int col);
const std::vector<std::string>& position_names();  // the 9, row-major
int position_index(const std::string& name);        // -1 if unknown
// The world's prior: P(shape) and P(colour | shape) — uneven on purpose, so that some objects
// are "popular" (POPE) and a model has priors to hallucinate from.
const std::vector<double>& shape_prior();
std::vector<double> color_prior(int shape);
// P(shape, colour) as a flat table [shape * n_colors + colour].
std::vector<double> category_prior();

// ---------------------------------------------------------------- scenes
struct WorldObject {
  int shape = 0, color = 0, size = 0;  // indices into the vocabularies
  int row = 1, col = 1;                 // grid cell
  double cx = 0.5, cy = 0.5;            // centre, fractions of the image side
  double radius = 0.1;                  // fraction of the image side
  double rotation = 0;                  // radians
  std::array<uint8_t, 3> rgb{0, 0, 0};  // the exact fill (the named colour, jittered)
  double visible = 1.0;                 // fraction of its area not covered by later objects
  std::string position() const { return position_name(row, col); }
  std::string category() const;         // "red circle"
};

struct Background {
  int color = 0, pattern = 0;
  std::array<uint8_t, 3> rgb{0, 0, 0};
  uint64_t noise_seed = 0;
};

struct Scene {
  std::string id;     // e.g. "eval_000012"
  std::string pool;   // base | unlabeled | stage2 | eval
  std::string image;  // path relative to the world's images/ folder
  int size = 64;      // square images, pixels
  Background background;
  std::vector<WorldObject> objects;  // drawing order (index 0 at the bottom)
};

struct SceneParams {
  int size = 64;            // image side in pixels
  int min_objects = 1, max_objects = 4;
  double min_visible = 0.6; // occlusion rule
  double overlap_jitter = 0.05;  // extra centre jitter (fraction of the side) that lets neighbours overlap
  // > 0: object centres snap to the centres of a grid of this many pixels (the ViT's patch grid),
  // the nearest such point to the jittered centre that keeps the object in its cell and image.
  // A ViT trained from scratch learns shapes far sooner when a shape always meets its patches at
  // the same offset (docs/world.md, "shapes and patches"); 0 = continuous positions.
  int snap = 0;
};

// Samples a scene from `rng` (deterministic). Objects are returned in drawing order.
Scene sample_scene(Rng& rng, const SceneParams& p);
// Renders it (antialiased: 4x4 samples on object edges). Also fills each object's `visible`.
Image render_scene(Scene& scene);
// Visible fraction of each object (on a size x size pixel-centre grid), in drawing order.
std::vector<double> visible_fractions(const Scene& scene);
// Objects in reading order (top row first, left to right): indices into scene.objects.
std::vector<int> reading_order(const Scene& scene);

nlohmann::json scene_to_json(const Scene& s);
Scene scene_from_json(const nlohmann::json& j, const std::string& where);  // throws stic::Error

// The 3x3 grid as class labels (cell = row * 3 + col): 0 = empty, else 1 + the shape (colour)
// index of the object in the cell, the last drawn if several. The labels of `stic
// train-vision`. Throws stic::Error naming `where` for an object outside the grid.
struct CellLabels {
  std::array<int64_t, 9> shape{}, color{};
};
CellLabels cell_labels(const Scene& s, const std::string& where);

}  // namespace stic::world
