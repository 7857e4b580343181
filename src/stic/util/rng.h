// stic/util/rng.h — splitmix64: the one small, portable hash / stream that every seeded draw in
// stic derives from (world content, per-request sampling seeds). Same numbers on every machine.
#pragma once

#include <cstdint>
#include <string>

namespace stic {

// One splitmix64 output for state `x` (the state advanced by the golden-ratio increment first).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A well-mixed 64-bit hash of `text` under `seed` (splitmix64 over its bytes): per-id draws and
// shard assignment.
inline uint64_t hash_id(uint64_t seed, const std::string& text) {
  uint64_t h = splitmix64(seed);
  for (unsigned char c : text) h = splitmix64(h ^ c);
  return h;
}

// A splitmix64 stream: next() = splitmix64 of the state, the state advancing by the increment.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    const uint64_t out = splitmix64(s_);
    s_ += 0x9E3779B97F4A7C15ull;
    return out;
  }
  // uniform in [0, 1) from the top 53 bits
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t s_;
};

}  // namespace stic
