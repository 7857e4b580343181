// stic/method/pools.h — the data pools of a recipe on an external model (docs/paper-run.md):
// the unlabeled images of stage 1 and the instruction records of stage 2, each optionally cut to
// a seeded sample ("6k images", "5k records").
//
// A sample of N is the N items with the smallest hash_id(seed, key) (key: the image's path as
// listed; a record's "id", or "#INDEX" without one), kept in their original order: the same
// sample whatever the folder's listing order, and a larger N keeps every item of a smaller one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stic {

// The images of a folder (regular files ending .jpg .jpeg .png .bmp .gif, not recursive), sorted
// by name, or the entries of a list file (relative ones resolved against `image_dir` by the
// caller); throws stic::Error naming an unreadable folder or list.
std::vector<std::string> list_pool_images(const std::string& image_dir, const std::string& image_list);

// The indices of the `n` items of `keys` kept by the seeded sample, ascending; n <= 0 or
// n >= keys.size(): all of them.
std::vector<size_t> pool_sample(const std::vector<std::string>& keys, int64_t n, uint64_t seed);

struct RecordPool {
  int64_t records = 0;      // records in the file
  int64_t with_image = 0;   // of them with an "image" (the only ones sampled: text-only records have
                            // nothing to describe)
  int64_t duplicate_ids = 0;  // records with an image whose id an earlier record has: left out
  int64_t kept = 0;         // written
  std::vector<std::string> images;  // the distinct images of the kept records (as the records name them)
};
// Reads a LLaVA instruction file (JSON list or JSONL) and writes the seeded sample of `n` of its
// records with an image (all of them when n <= 0) to `out` as a JSON list (when `out` is not empty).
// A record whose id repeats an earlier one's is left out (describe and infuse match by id). Records keep every
// field. Throws stic::Error naming the file and record for one that is not an object.
RecordPool sample_records(const std::string& data, int64_t n, uint64_t seed, const std::string& out);

}  // namespace stic
