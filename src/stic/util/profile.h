// stic/util/profile.h — opt-in timing of the decode step's parts (STIC_PROFILE=1), for
// benchmarks and performance work. With profiling on, the parts synchronise the device around
// themselves, so the totals are GPU times; off (the default) it costs one branch.
#pragma once

#include <chrono>
#include <cstdlib>

namespace stic::profile {

enum Part { KvWrite = 0, Attention, Launch, Step, NumParts };

inline int level() {
  static const int l = [] {
    const char* v = std::getenv("STIC_PROFILE");
    return v ? std::atoi(v) : 0;
  }();
  return l;
}
inline double* totals() {
  static double t[NumParts] = {0, 0, 0, 0};
  return t;
}
inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace stic::profile
