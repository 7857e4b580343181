#include "stic/util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace stic {

Progress::Progress(int64_t total, std::string label, bool enabled)
    : total_(total), label_(std::move(label)), enabled_(enabled), tty_(::isatty(2) != 0), interval_s_(10.0) {
  if (const char* e = std::getenv("STIC_PROGRESS")) {
    if (std::string(e) == "0") enabled_ = false;
    else if (std::string(e) == "1") tty_ = true;
  }
  start_ = last_draw_ = Clock::now();
}

Progress::~Progress() { finish(); }

double Progress::elapsed_s() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

double Progress::rate() const {
  const double e = elapsed_s();
  return e > 0 ? static_cast<double>(done_) / e : 0.0;
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string Progress::render_line(int width) const {
  std::string s = label_;
  const double r = rate();
  char buf[128];
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    const int fill = static_cast<int>(frac * width);
    s += " [";
    s += std::string(fill, '#');
    s += std::string(width - fill, ' ');
    s += "]";
    std::snprintf(buf, sizeof buf, " %lld/%lld %5.1f%%", static_cast<long long>(done_),
                  static_cast<long long>(total_), 100.0 * frac);
    s += buf;
  } else {
    std::snprintf(buf, sizeof buf, " %lld", static_cast<long long>(done_));
    s += buf;
  }
  const std::string per = unit_.empty() ? "/s" : " " + unit_ + "/s";
  if (r >= 100) std::snprintf(buf, sizeof buf, "  %.0f%s", r, per.c_str());
  else if (r >= 1) std::snprintf(buf, sizeof buf, "  %.1f%s", r, per.c_str());
  else std::snprintf(buf, sizeof buf, "  %.2f%s", r, per.c_str());
  s += buf;
  if (total_ > 0) {
    const bool done = done_ >= total_;
    const double eta = (r > 0 && !done) ? static_cast<double>(total_ - done_) / r : (done ? 0.0 : -1.0);
    s += done ? "  in " + format_duration(elapsed_s()) : "  ETA " + format_duration(eta);
  } else {
    s += "  " + format_duration(elapsed_s());
  }
  if (!suffix_.empty()) s += "  " + suffix_;
  return s;
}

void Progress::maybe_draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!force && since < (tty_ ? 0.1 : interval_s_)) return;
  last_draw_ = now;
  const std::string line = render_line();
  if (tty_) {
    std::string pad = line.size() < last_len_ ? std::string(last_len_ - line.size(), ' ') : "";
    std::fprintf(stderr, "\r%s%s", line.c_str(), pad.c_str());
    last_len_ = line.size();
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::set_unit(const std::string& u) { unit_ = u; }

void Progress::update(int64_t n) {
  done_ += n;
  maybe_draw(false);
}

void Progress::set(int64_t done) {
  done_ = done;
  maybe_draw(false);
}

void Progress::set_total(int64_t total) { total_ = total; }
void Progress::set_suffix(const std::string& s) { suffix_ = s; }

void Progress::finish() {
  if (finished_) return;
  if (enabled_) {
    maybe_draw(true);
    if (tty_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  finished_ = true;
}

}  // namespace stic
