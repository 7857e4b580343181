// stic/eval/dar.cpp — see dar.h.
#include "stic/eval/dar.h"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "stic/infer/batch_job.h"
#include "stic/text/stic_prompts.h"
#include "stic/util/error.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;

namespace stic {

DarDescriptions dar_describe(const DarOptions& o, const std::vector<std::string>& images, const std::string& image_dir,
                             const std::string& out) {
  DarDescriptions res;
  const std::string prompt = o.prompt.empty() ? stic_dar_prompt() : o.prompt;
  {
    BatchJobOptions jo;
    jo.out = out;
    jo.verb = "eval (DaR descriptions)";
    jo.engine.max_batch = o.batch_size;
    jo.write_errors = true;  // an unreadable image: its questions fail in the answer step too
    jo.progress = o.progress;
    jo.progress_unit = "images";
    jo.record = [&](const GenResult& g) {
      return nlohmann::json{{"id", g.id}, {"image", g.id}, {"prompt", prompt}, {"description", strip(g.text)},
                            {"finish_reason", g.finish_reason}};
    };
    BatchJob job(jo);
    std::vector<GenRequest> reqs;
    std::set<std::string> seen;
    for (const std::string& img : images) {
      if (img.empty() || !seen.insert(img).second || !job.wanted(img)) continue;
      GenRequest q;
      q.id = img;
      q.image = !image_dir.empty() && fs::path(img).is_relative() ? (fs::path(image_dir) / img).string() : img;
      q.prompt = prompt;
      q.max_new_tokens = o.max_new_tokens;
      q.temperature = 0;  // greedy
      reqs.push_back(std::move(q));
    }
    if (!reqs.empty()) {
      auto model = load_for_inference(o.model, load_options(o.device, o.dtype, "", o.image_backend), o.adapter, o.progress ? "DaR" : "");
      const BatchJobResult r = job.run(*model, reqs);
      res.described = r.done;
      res.failed = r.failed;
      res.seconds = r.stats.seconds;
    }
  }
  read_jsonl(
      out,
      [&](size_t, const nlohmann::json& j) {
        if (j.contains("description") && j["description"].is_string())
          res.text[j.value("id", std::string())] = j["description"].get<std::string>();
      },
      [&](size_t, const std::string& msg) { fail(msg); });
  return res;
}

}  // namespace stic
