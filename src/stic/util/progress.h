// stic/util/progress.h — a progress bar for long loops, on stderr.
//
//   Progress p(total, "rendering");
//   for (...) { ...; p.update(1); }
//   p.finish();                      // (the destructor finishes too)
//
// On a terminal it redraws one line (label, bar, done/total, percent, rate, ETA) at most 10 times
// a second; when stderr is not a terminal (logs, CI) it prints a plain line every `interval`
// seconds (default 10) and a final line, so logs stay short. STIC_PROGRESS=0 turns it off,
// STIC_PROGRESS=1 forces the terminal style. Not thread-safe: update it from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace stic {

class Progress {
 public:
  // total <= 0: unknown total (no bar, no ETA). enabled=false: silent.
  Progress(int64_t total, std::string label, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t n = 1);  // n more items done
  void set(int64_t done);      // absolute position
  void set_total(int64_t total);
  void set_suffix(const std::string& s);  // extra text after the ETA (e.g. "loss 1.23")
  void set_unit(const std::string& u);    // what is counted: the rate reads "12.5 images/s" ("" = "12.5/s")
  void finish();               // final line; idempotent

  int64_t done() const { return done_; }
  double elapsed_s() const;
  double rate() const;  // items per second since start
  // "1:02:03" / "4:05" / "--:--" for an unknown value (exposed for tests).
  static std::string format_duration(double seconds);
  // The line the bar would draw now (exposed for tests).
  std::string render_line(int width = 30) const;

 private:
  void maybe_draw(bool force);
  using Clock = std::chrono::steady_clock;
  int64_t total_, done_ = 0;
  std::string label_, suffix_, unit_;
  bool enabled_, tty_, finished_ = false;
  double interval_s_;
  Clock::time_point start_, last_draw_;
  size_t last_len_ = 0;
};

}  // namespace stic
