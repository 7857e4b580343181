// Header fuzzing of the readers of untrusted files: a small safetensors file, a SentencePiece
// tokenizer.model, a PNG, a JPEG and a JSONL file, each mutated a few hundred to a few thousand
// times (bytes flipped or overwritten in the first bytes, where the headers are; truncations;
// inserted runs) with a fixed seed. Every mutant must either load or throw stic::Error naming the
// file: no signal (the test process would die), no hang (ctest's timeout), no other exception.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>

#include "stic/image/image.h"
#include "stic/io/safetensors.h"
#include "stic/text/tokenizer.h"
#include "stic/util/error.h"
#include "stic/util/jsonl.h"

namespace fs = std::filesystem;
namespace {

const std::string kFix = std::string(STIC_SOURCE_DIR) + "/tests/fixtures";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// One mutant of `good`: most edits land in the first `head` bytes (the header).
std::string mutate(const std::string& good, size_t head, std::mt19937_64& rng) {
  std::string s = good;
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % std::max<size_t>(1, n)); };
  const size_t span = std::min(head, s.size());
  switch (rng() % 5) {
    case 0:  // flip bits in the header
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) s[pick(span)] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1:  // overwrite a header byte with an extreme value
      s[pick(span)] = static_cast<char>((rng() % 2) ? 0xFF : 0x00);
      break;
    case 2:  // truncate anywhere
      s.resize(pick(s.size()));
      break;
    case 3:  // insert a run of random bytes in the header
      s.insert(pick(span), std::string(1 + pick(16), static_cast<char>(rng() & 0xFF)));
      break;
    default:  // overwrite 4 header bytes (a length or offset field) with a random word
      if (span >= 4) {
        const size_t at = pick(span - 3);
        for (int k = 0; k < 4; ++k) s[at + k] = static_cast<char>(rng() & 0xFF);
      }
  }
  return s;
}

struct FuzzCount {
  int loaded = 0, refused = 0;
};

// Runs `load(path)` on `n` mutants of `good` written to a temp file; any exception other than a
// stic::Error naming the file is a failure.
FuzzCount fuzz(const std::string& name, const std::string& good, size_t head, int n,
               const std::function<void(const std::string&)>& load) {
  std::mt19937_64 rng(20261205);
  const std::string path = ::testing::TempDir() + "stic_fuzz_" + name;
  FuzzCount c;
  int other = 0;
  for (int i = 0; i < n; ++i) {
    spit(path, mutate(good, head, rng));
    try {
      load(path);
      ++c.loaded;
    } catch (const stic::Error& e) {
      ++c.refused;
      const std::string msg = e.what();
      if (msg.find(path) == std::string::npos && msg.find(name) == std::string::npos && other++ < 5)
        ADD_FAILURE() << name << " mutant " << i << ": the error does not name the file: " << msg;
    } catch (const std::exception& e) {
      if (other++ < 5) ADD_FAILURE() << name << " mutant " << i << ": threw a non-stic exception: " << e.what();
    }
  }
  fs::remove(path);
  std::printf("[ fuzz ] %s: %d mutants, %d loaded, %d refused with a located error\n", name.c_str(), n, c.loaded,
              c.refused);
  return c;
}

TEST(Fuzz, SafetensorsHeaders) {
  const std::string good = slurp(kFix + "/peft/hf_llava_llama/adapter_model.safetensors");
  uint64_t header = 0;  // the little-endian u64 length of the JSON header, then the header
  for (int k = 7; k >= 0; --k) header = (header << 8) | static_cast<uint8_t>(good[k]);
  header += 8;
  const FuzzCount c = fuzz("adapter.safetensors", good, header, 3000, [](const std::string& p) {
    stic::SafetensorsFile f(p);
    for (const auto& [k, e] : f.entries()) f.get(k);  // every tensor read back
  });
  EXPECT_GT(c.refused, 1000);  // the mutations do break the header
}

TEST(Fuzz, TokenizerModel) {
  const std::string good = slurp(kFix + "/tokenizer/tiny.model");
  const FuzzCount c = fuzz("tokenizer.model", good, good.size(), 1500, [](const std::string& p) {
    auto tok = stic::Tokenizer::from_model_file(p);
    tok.encode("Hello world, a test of the fuzzed tokenizer.", true);
  });
  EXPECT_GT(c.refused, 100);
}

TEST(Fuzz, PngAndJpeg) {
  for (const char* f : {"images/logo.png", "images/china.jpg"}) {
    const std::string good = slurp(kFix + "/" + f);
    const std::string name = fs::path(f).filename().string();
    const FuzzCount c = fuzz(name, good, 2048, 1500, [](const std::string& p) { stic::image_load(p); });
    EXPECT_GT(c.refused, 100) << f;
  }
}

TEST(Fuzz, JsonlFile) {
  std::string good;
  for (int i = 0; i < 20; ++i)
    good += "{\"id\": \"r" + std::to_string(i) + "\", \"prompt\": \"describe the image\", \"image\": \"a.png\"}\n";
  int bad_lines = 0;
  fuzz("requests.jsonl", good, good.size(), 2000, [&](const std::string& p) {
    stic::read_jsonl(p, [](size_t, const nlohmann::json& j) { (void)j.dump(); },
                     [&](size_t, const std::string& msg) {
                       ++bad_lines;
                       EXPECT_NE(msg.find("requests.jsonl:"), std::string::npos) << msg;
                     });
  });
  EXPECT_GT(bad_lines, 100);
}

}  // namespace
