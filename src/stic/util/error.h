// stic/util/error.h — the one exception type of the library.
//
// Every failure a user can cause (a missing file, a bad header, a malformed record) is thrown
// as stic::Error with a one-line, located message: what went wrong, where (file, record,
// tensor name), and what was expected. The CLI prints `stic: <message>` and exits with 1.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace stic {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void error_append(std::ostringstream&) {}
template <typename T, typename... Rest>
void error_append(std::ostringstream& os, T&& first, Rest&&... rest) {
  os << std::forward<T>(first);
  error_append(os, std::forward<Rest>(rest)...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one message.
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  detail::error_append(os, std::forward<Args>(args)...);
  return os.str();
}

// Throws stic::Error with the concatenated message.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str_cat(std::forward<Args>(args)...));
}

}  // namespace stic
