#include "stic/world/world.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fcntl.h>
#include <cmath>
#include <map>
#include <algorithm>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/progress.h"
#include "stic/world/text.h"

extern char** environ;

namespace stic::world {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

// ---------------------------------------------------------------- presets
const std::vector<Preset>& presets() {
  static const std::vector<Preset> v = [] {
    std::vector<Preset> out;
    Preset s;
    s.name = "world-smoke";
    s.purpose = "CI: the whole path in seconds";
    s.scene.size = 48;
    s.scene.max_objects = 3;
    s.n_base = 48, s.n_unlabeled = 16, s.n_stage2 = 16, s.n_eval = 16;
    s.model = ModelShape{32, 2, 2, 64, 8, 64, 2, 2, 128, 400, 1024};
    out.push_back(s);

    Preset t;
    t.name = "world-tiny";
    t.purpose = "README main job: a base model trained from scratch on a 2-core CPU in ~12 minutes";
    t.scene.size = 64;
    t.scene.max_objects = 4;
    t.n_base = 3000, t.n_unlabeled = 600, t.n_stage2 = 300, t.n_eval = 200;
    t.model = ModelShape{96, 4, 4, 256, 8, 128, 4, 4, 352, 1000, 1024};
    out.push_back(t);

    Preset m;
    m.name = "world-small";
    m.purpose = "one GPU: a larger world and model";
    m.scene.size = 128;
    m.scene.max_objects = 6;
    m.n_base = 30000, m.n_unlabeled = 6000, m.n_stage2 = 3000, m.n_eval = 1000;
    m.model = ModelShape{256, 6, 8, 1024, 16, 512, 8, 8, 1376, 1000, 2048};
    out.push_back(m);
    // object centres on the ViT's patch grid (docs/world.md, "Shapes and patches")
    for (auto& p : out) p.scene.snap = p.model.patch;
    return out;
  }();
  return v;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const auto& p : presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  fail("unknown world preset '", name, "' (valid presets: ", names, ")");
}

const std::vector<std::string>& pool_names() {
  static const std::vector<std::string> v{"base", "unlabeled", "stage2", "eval"};
  return v;
}

int pool_size(const Preset& p, const std::string& pool) {
  if (pool == "base") return p.n_base;
  if (pool == "unlabeled") return p.n_unlabeled;
  if (pool == "stage2") return p.n_stage2;
  if (pool == "eval") return p.n_eval;
  fail("unknown pool '", pool, "'");
}

static uint64_t pool_key(const std::string& pool) {
  const auto& v = pool_names();
  return static_cast<uint64_t>(std::find(v.begin(), v.end(), pool) - v.begin()) + 1;
}

std::string image_name(const std::string& pool, int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "_%06d", index);
  return pool + buf;
}

Scene world_scene(const Preset& p, uint64_t seed, const std::string& pool, int index) {
  Rng rng(mix_seed(seed, pool_key(pool) * 100000000ull + static_cast<uint64_t>(index), 1));
  Scene s = sample_scene(rng, p.scene);
  s.pool = pool;
  s.id = image_name(pool, index);
  s.image = pool + "/" + s.id + ".png";
  return s;
}

static Rng text_rng(uint64_t seed, const std::string& pool, int index, uint64_t purpose) {
  return Rng(mix_seed(seed, pool_key(pool) * 100000000ull + static_cast<uint64_t>(index), 10 + purpose));
}

std::string base64_encode(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

// ---------------------------------------------------------------- model folder
json model_config_json(const Preset& p) {
  const auto& m = p.model;
  const int vocab = (m.spm_vocab + 1 + 63) / 64 * 64;  // room for <image>, padded
  return {
      {"architectures", {"LlavaForConditionalGeneration"}},
      {"model_type", "llava"},
      {"image_token_index", m.spm_vocab},
      {"image_seq_length", (p.scene.size / m.patch) * (p.scene.size / m.patch)},
      {"projector_hidden_act", "gelu"},
      {"multimodal_projector_bias", true},
      {"vision_feature_layer", -2},
      {"vision_feature_select_strategy", "default"},
      {"tie_word_embeddings", false},
      {"dtype", "float32"},
      {"text_config",
       {{"model_type", "llama"},
        {"vocab_size", vocab},
        {"hidden_size", m.text_hidden},
        {"intermediate_size", m.text_intermediate},
        {"num_hidden_layers", m.text_layers},
        {"num_attention_heads", m.text_heads},
        {"num_key_value_heads", m.text_heads},
        {"head_dim", m.text_hidden / m.text_heads},
        {"hidden_act", "silu"},
        {"max_position_embeddings", m.max_positions},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 10000.0},
        {"attention_bias", false},
        {"mlp_bias", false},
        {"bos_token_id", 1},
        {"eos_token_id", 2},
        {"pad_token_id", nullptr},
        {"tie_word_embeddings", false},
        {"initializer_range", 0.02}}},
      {"vision_config",
       {{"model_type", "clip_vision_model"},
        {"hidden_size", m.vision_hidden},
        {"intermediate_size", m.vision_intermediate},
        {"num_hidden_layers", m.vision_layers},
        {"num_attention_heads", m.vision_heads},
        {"image_size", p.scene.size},
        {"patch_size", m.patch},
        {"num_channels", 3},
        {"hidden_act", "quick_gelu"},
        {"layer_norm_eps", 1e-5},
        {"projection_dim", m.vision_hidden},
        {"initializer_range", 0.02},
        {"initializer_factor", 1.0}}},
      {"stic_world", {{"preset", p.name}, {"version", kWorldVersion}}}};
}

namespace {

std::string dump(const json& j) { return j.dump(2) + "\n"; }

// Per-image files: temp + rename, without AtomicFile's fsync (thousands of small files; the
// rename alone makes them all-or-nothing for a killed process, which is what resuming needs).
void write_renamed(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, ": cannot create file");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": write failed");
  }
}

void write_model_files(const Preset& p, const std::string& dir) {
  write_file_atomic(dir + "/config.json", dump(model_config_json(p)));
  const int n = p.scene.size;
  json pre = {{"image_processor_type", "LlavaImageProcessor"},
              {"do_resize", true},
              {"size", {{"shortest_edge", n}}},
              {"do_center_crop", true},
              {"crop_size", {{"height", n}, {"width", n}}},
              {"do_rescale", true},
              {"rescale_factor", 1.0 / 255.0},
              {"do_normalize", true},
              {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
              {"image_std", {0.26862954, 0.26130258, 0.27577711}},
              {"do_pad", true},
              {"do_convert_rgb", true},
              {"resample", 3}};
  write_file_atomic(dir + "/preprocessor_config.json", dump(pre));
  auto tok = [](const char* c, bool special) {
    return json{{"content", c}, {"lstrip", false}, {"normalized", false}, {"rstrip", false}, {"single_word", false},
                {"special", special}};
  };
  json tc = {{"tokenizer_class", "LlamaTokenizer"},
             {"add_bos_token", true},
             {"add_eos_token", false},
             {"legacy", false},
             {"bos_token", "<s>"},
             {"eos_token", "</s>"},
             {"unk_token", "<unk>"},
             {"pad_token", "<unk>"},
             {"model_max_length", p.model.max_positions},
             {"clean_up_tokenization_spaces", false},
             {"added_tokens_decoder",
              {{"0", tok("<unk>", true)},
               {"1", tok("<s>", true)},
               {"2", tok("</s>", true)},
               {std::to_string(p.model.spm_vocab), tok("<image>", true)}}},
             {"extra_special_tokens", {"<image>"}}};
  write_file_atomic(dir + "/tokenizer_config.json", dump(tc));
  json stm = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<unk>"},
              {"additional_special_tokens", {"<image>"}}};
  write_file_atomic(dir + "/special_tokens_map.json", dump(stm));
  write_file_atomic(dir + "/generation_config.json",
               dump({{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 0}}));
}

// Runs argv (no shell), stdout+stderr to `log`. Returns the exit status (127: not found).
int run_process(const std::vector<std::string>& args, const std::string& log, const std::string& cwd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // absolute: the child opens the log after its chdir (a relative --out broke this)
  const std::string cwd_abs = fs::absolute(cwd).string(), log_abs = fs::absolute(log).string();
  posix_spawn_file_actions_addchdir_np(&fa, cwd_abs.c_str());
  posix_spawn_file_actions_addopen(&fa, 1, log_abs.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 126;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void train_tokenizer(const Preset& p, const WorldOptions& o, const std::string& corpus, const std::string& model_dir) {
  const std::string tdir = o.out + "/tokenizer";
  const std::string prefix = tdir + "/world";
  const std::string log = tdir + "/spm_train.log";
  // relative paths, run inside tokenizer/: the .model records them (same bytes in any folder)
  std::vector<std::string> args{o.spm_train,
                                "--input=" + fs::path(corpus).filename().string(),
                                "--model_prefix=world",
                                "--vocab_size=" + std::to_string(p.model.spm_vocab),
                                "--model_type=bpe",
                                "--byte_fallback=true",
                                "--split_digits=true",
                                "--allow_whitespace_only_pieces=true",
                                "--remove_extra_whitespaces=false",
                                "--normalization_rule_name=identity",
                                "--add_dummy_prefix=true",
                                "--character_coverage=1.0",
                                "--unk_id=0",
                                "--bos_id=1",
                                "--eos_id=2",
                                "--pad_id=-1",
                                "--num_threads=1",
                                "--max_sentence_length=16384",
                                "--minloglevel=1"};
  const int rc = run_process(args, log, tdir);
  if (rc == 127)
    fail(o.spm_train, ": cannot run the SentencePiece trainer (install the Debian package 'sentencepiece')");
  if (rc != 0) {
    std::string tail = file_exists(log) ? read_text_file(log) : "";
    if (tail.size() > 300) tail = tail.substr(tail.size() - 300);
    for (auto& c : tail)
      if (c == '\n') c = ' ';
    fail(log, ": spm_train failed with status ", rc, " (", tail, ")");
  }
  write_file_atomic(model_dir + "/tokenizer.model", read_text_file(prefix + ".model"));
}

std::string human(const std::string& v, bool first) { return first ? "<image>\n" + v : v; }

ojson conversation(const std::string& id, const std::string& image, std::vector<std::pair<std::string, std::string>> turns) {
  ojson conv = ojson::array();
  for (size_t i = 0; i < turns.size(); ++i) {
    conv.push_back({{"from", "human"}, {"value", human(turns[i].first, i == 0)}});
    conv.push_back({{"from", "gpt"}, {"value", turns[i].second}});
  }
  return {{"id", id}, {"image", image}, {"conversations", conv}};
}

std::pair<std::string, std::string> qa_turn(const QA& q) {
  if (q.type == "choice") return {choice_text(q) + kOptionSuffix, q.answer};
  return {q.question + kShortAnswerSuffix, q.answer};
}

// A description turn for base training: brief caption, normal prompt, step-by-step, a plain
// "describe in detail", or (rarely) a hallucination-inducing prompt with invented objects.
std::pair<std::string, std::string> description_turn(const Scene& s, Rng& rng) {
  const double u = rng.uniform();
  if (u < 0.2) return {rng.pick(caption_prompts()), short_caption(s, rng)};
  if (u < 0.6) {
    const int i = rng.below(8);
    return {normal_prompts()[static_cast<size_t>(i)], normal_response(s, i, rng)};
  }
  if (u < 0.72) return {step_by_step_prompt(), step_by_step_response(s, rng)};
  if (u < 0.9) return {"Describe the image in detail.", detailed_description(s, rng)};
  const int i = rng.below(8);
  return {hallucination_prompts()[static_cast<size_t>(i)], hallucinated_response(s, i, rng)};
}

QA random_qa(const Scene& s, Rng& rng) {
  if (rng.chance(0.2)) return make_choice(s, rng);
  return make_qa(s, rng.pick(qa_types()), rng);
}

struct Manifest {
  json j;
};

json manifest_json(const Preset& p, uint64_t seed, bool complete) {
  json pools = json::object();
  for (const auto& pool : pool_names()) pools[pool] = pool_size(p, pool);
  return {{"format", "stic-world"},
          {"version", kWorldVersion},
          {"preset", p.name},
          {"seed", seed},
          {"image_size", p.scene.size},
          {"pools", pools},
          {"complete", complete}};
}

void check_or_claim_folder(const Preset& p, const WorldOptions& o) {
  const std::string mpath = o.out + "/world.json";
  if (file_exists(mpath)) {
    json m;
    try {
      m = json::parse(read_text_file(mpath));
    } catch (const json::exception& e) {
      fail(mpath, ": not valid JSON (", e.what(), "); delete the folder or choose another --out");
    }
    const std::string preset = m.value("preset", std::string("?"));
    const uint64_t seed = m.contains("seed") && m["seed"].is_number_unsigned() ? m["seed"].get<uint64_t>() : ~0ull;
    const int version = m.value("version", -1);
    if (m.value("format", std::string()) != "stic-world" || preset != p.name || seed != o.seed || version != kWorldVersion)
      fail(o.out, ": holds a different world (preset ", preset, ", seed ", m.value("seed", json()).dump(), ", version ",
           version, "; asked for preset ", p.name, ", seed ", o.seed, ", version ", kWorldVersion,
           "); choose another --out or delete the folder");
    return;
  }
  if (dir_exists(o.out) && !fs::is_empty(o.out))
    fail(o.out, ": folder is not empty and holds no world.json (not a stic world); choose an empty or new folder");
  fs::create_directories(o.out);
  write_file_atomic(mpath, dump(manifest_json(p, o.seed, false)));
}

// Temp files of a killed run (AtomicFile and PNG temps: NAME.tmp.PID[.png]).
void remove_stale_temps(const std::string& dir) {
  if (!dir_exists(dir)) return;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(e.path());
}

}  // namespace

// ---------------------------------------------------------------- build
WorldSummary build_world(const WorldOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.out.empty()) fail("world: --out is required");
  const Preset& p = find_preset(o.preset);
  check_or_claim_folder(p, o);
  WorldSummary sum;
  sum.out = o.out;
  sum.model_dir = o.out + "/model";
  for (const char* d : {"images", "scenes", "data", "eval", "gt", "tokenizer", "model"}) fs::create_directories(o.out + "/" + d);
  for (const auto& pool : pool_names()) {
    fs::create_directories(o.out + "/images/" + pool);
    fs::create_directories(o.out + "/scenes/" + pool);
  }
  remove_stale_temps(o.out);

  // 1. images + scene graphs (each pair atomic; a finished pair is skipped). Every image has
  // its own seed, so the worker threads produce the same bytes in any order.
  std::map<std::string, std::vector<Scene>> scenes;
  std::vector<std::pair<std::string, int>> jobs;
  for (const auto& pool : pool_names()) {
    const int n = pool_size(p, pool);
    scenes[pool].resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) jobs.emplace_back(pool, i);
  }
  sum.images_total = static_cast<int>(jobs.size());
  {
    std::atomic<size_t> next{0};
    std::atomic<int> done{0}, rendered{0};
    std::atomic<bool> stop{false};
    std::exception_ptr error;
    std::mutex error_mu;
    auto work = [&] {
      try {
        while (!stop) {
          const size_t j = next++;
          if (j >= jobs.size()) break;
          const auto& [pool, i] = jobs[j];
          Scene s = world_scene(p, o.seed, pool, i);
          const std::string png = o.out + "/images/" + s.image;
          const std::string sj = o.out + "/scenes/" + pool + "/" + s.id + ".json";
          if (file_exists(png) && file_exists(sj)) {
            auto vis = visible_fractions(s);
            for (size_t k = 0; k < s.objects.size(); ++k) s.objects[k].visible = std::round(vis[k] * 1e4) / 1e4;
          } else {
            Image im = render_scene(s);
            const std::string tmp = png + ".tmp." + std::to_string(::getpid()) + ".png";
            if (!image_save_png(im, tmp)) {
              std::remove(tmp.c_str());
              fail(png, ": cannot write PNG");
            }
            if (std::rename(tmp.c_str(), png.c_str()) != 0) {
              std::remove(tmp.c_str());
              fail(png, ": rename from temp file failed");
            }
            write_renamed(sj, dump(scene_to_json(s)));
            ++rendered;
          }
          scenes.at(pool)[static_cast<size_t>(i)] = std::move(s);
          ++done;
        }
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mu);
        if (!error) error = std::current_exception();
        stop = true;
      }
    };
    int nt = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    nt = std::max(1, std::min({nt, 16, sum.images_total / 32 + 1}));
    std::vector<std::thread> pool_threads;
    for (int t = 1; t < nt; ++t) pool_threads.emplace_back(work);
    Progress bar(sum.images_total, "world: rendering", o.progress && sum.images_total >= 200);
    // the main thread works too; a small thread keeps the bar moving (it alone touches `bar`)
    std::atomic<bool> finished{false};
    std::thread progress_thread([&] {
      while (!finished) {
        bar.set(done);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    work();
    for (auto& t : pool_threads) t.join();
    finished = true;
    progress_thread.join();
    if (error) std::rethrow_exception(error);
    bar.set(done);
    bar.finish();
    sum.images_rendered = rendered;
    sum.images_skipped = sum.images_total - rendered;
  }

  // 2. text: instruction data, eval tasks, ground truth, tokenizer corpus
  std::ostringstream corpus;
  auto add_corpus = [&](const std::string& t) { corpus << t << "\n"; };
  {
    // the base mix (a description turn and base_qa_turns questions, shuffled) for the images of
    // `pool`: base_train.json on the base images (its text feeds the tokenizer) and the same mix
    // on the held-out eval images, eval_sft.json, for the trainer's --eval-data
    auto base_mix = [&](const std::string& pool, const std::string& tag, bool to_corpus) {
      ojson out = ojson::array();
      for (const auto& s : scenes[pool]) {
        Rng rng = text_rng(o.seed, tag, static_cast<int>(&s - &scenes[pool][0]), 0);
        std::vector<std::pair<std::string, std::string>> turns{description_turn(s, rng)};
        for (int k = 0; k < p.base_qa_turns; ++k) turns.push_back(qa_turn(random_qa(s, rng)));
        rng.shuffle(turns);
        if (to_corpus)
          for (const auto& t : turns) add_corpus(t.first), add_corpus(t.second);
        out.push_back(conversation(s.id, s.image, turns));
      }
      return out;
    };
    write_file_atomic(o.out + "/data/base_train.json", base_mix("base", "base", true).dump(1) + "\n");
    write_file_atomic(o.out + "/data/eval_sft.json", base_mix("eval", "eval_sft", false).dump(1) + "\n");
    // pretraining (LLaVA's feature-alignment stage): one brief request per image, answered with
    // a caption that names every object and its place; the same on the eval images for the
    // held-out loss
    for (const char* pool : {"base", "eval"}) {
      ojson pre = ojson::array();
      for (const auto& s : scenes[pool]) {
        Rng rng = text_rng(o.seed, std::string(pool) + "_pretrain", static_cast<int>(&s - &scenes[pool][0]), 0);
        pre.push_back(conversation(s.id, s.image, {{rng.pick(caption_prompts()), grounded_caption(s)}}));
      }
      write_file_atomic(o.out + "/data/" + pool + "_pretrain.json", pre.dump(1) + "\n");
    }
  }
  {
    ojson st2 = ojson::array();
    for (const auto& s : scenes["stage2"]) {
      Rng rng = text_rng(o.seed, "stage2", static_cast<int>(&s - &scenes["stage2"][0]), 0);
      std::vector<std::pair<std::string, std::string>> turns;
      const int k = rng.range(2, 4);
      for (int t = 0; t < k; ++t) turns.push_back(qa_turn(random_qa(s, rng)));
      for (const auto& t : turns) add_corpus(t.first), add_corpus(t.second);
      st2.push_back(conversation(s.id, s.image, turns));
    }
    write_file_atomic(o.out + "/data/stage2_sft.json", st2.dump(1) + "\n");
  }
  {
    std::string list, gt;
    for (const auto& s : scenes["unlabeled"]) list += s.image + "\n";
    write_file_atomic(o.out + "/data/unlabeled_images.txt", list);
  }
  for (const auto& pool : pool_names()) {
    std::string lines;
    for (const auto& s : scenes[pool]) lines += scene_to_json(s).dump() + "\n";
    write_file_atomic(o.out + "/gt/" + pool + "_scenes.jsonl", lines);
  }
  {
    // eval: one description, two short questions, POPE (1 yes + 1 no per strategy), one choice
    std::string requests, answers, descs, pope_all;
    std::map<std::string, std::string> pope_by;
    std::string tsv = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n";
    int mm_index = 0, pope_id = 0;
    auto req = [&](const std::string& id, const Scene& s, const std::string& prompt, ojson gt) {
      ojson r = {{"id", id}, {"image", s.image}, {"prompt", "<image>\n" + prompt}};
      requests += r.dump() + "\n";
      ojson a = {{"id", id}, {"image", s.image}};
      for (auto it = gt.begin(); it != gt.end(); ++it) a[it.key()] = it.value();
      answers += a.dump() + "\n";
    };
    const auto& types = qa_types();
    for (size_t idx = 0; idx < scenes["eval"].size(); ++idx) {
      const Scene& s = scenes["eval"][idx];
      Rng rng = text_rng(o.seed, "eval", static_cast<int>(idx), 0);
      const std::string dprompt = normal_prompts()[idx % normal_prompts().size()];
      Rng drng = text_rng(o.seed, "eval", static_cast<int>(idx), 1);
      const std::string ref = detailed_description(s, drng);
      req(s.id + "-desc", s, dprompt, {{"type", "describe"}, {"answer", ref}});
      descs += ojson({{"id", s.id}, {"image", s.image}, {"prompt", dprompt}, {"description", ref}}).dump() + "\n";
      for (int k = 0; k < 2; ++k) {
        const std::string& t = types[(idx * 2 + static_cast<size_t>(k)) % types.size()];
        QA q = make_qa(s, t, rng);
        req(s.id + "-q" + std::to_string(k), s, q.question + kShortAnswerSuffix,
            {{"type", q.type}, {"question", q.question}, {"answer", q.answer}});
      }
      for (const char* strat : {"random", "popular", "adversarial"}) {
        auto qs = pope_questions(s, strat, 1, rng);
        for (size_t k = 0; k < qs.size(); ++k) {
          const auto& q = qs[k];
          const std::string id = s.id + "-pope-" + strat + "-" + std::to_string(k);
          req(id, s, q.question + kShortAnswerSuffix,
              {{"type", "pope"}, {"pope", strat}, {"question", q.question}, {"answer", q.answer}});
          ojson pl = {{"question_id", pope_id++}, {"image", s.image}, {"text", q.question}, {"label", q.answer},
                      {"category", strat}, {"id", id}};
          pope_all += pl.dump() + "\n";
          pope_by[strat] += pl.dump() + "\n";
        }
      }
      QA c = make_choice(s, rng);
      const std::string cid = s.id + "-mc0";
      req(cid, s, choice_text(c) + kOptionSuffix,
          {{"type", "choice"}, {"category", c.category}, {"question", c.question}, {"options", c.options},
           {"answer", c.answer}, {"mmbench_index", mm_index}});
      const std::string png_b64 = base64_encode(read_text_file(o.out + "/images/" + s.image));
      tsv += std::to_string(mm_index++) + "\t" + c.question + "\t\t" + c.options[0] + "\t" + c.options[1] + "\t" +
             c.options[2] + "\t" + c.options[3] + "\t" + c.answer + "\t" + c.category + "\t" + png_b64 + "\n";
    }
    write_file_atomic(o.out + "/eval/requests.jsonl", requests);
    write_file_atomic(o.out + "/gt/eval_answers.jsonl", answers);
    write_file_atomic(o.out + "/gt/descriptions.jsonl", descs);
    write_file_atomic(o.out + "/eval/mmbench.tsv", tsv);
    write_file_atomic(o.out + "/eval/pope.jsonl", pope_all);
    for (const auto& [k, v] : pope_by) write_file_atomic(o.out + "/eval/pope_" + k + ".jsonl", v);
  }

  // 3. tokenizer: the world's text + the prompts and chat templates the verbs will wrap it in
  for (const auto& t : normal_prompts()) add_corpus(t);
  for (const auto& t : hallucination_prompts()) add_corpus(t);
  for (const auto& t : caption_prompts()) add_corpus(t);
  add_corpus(step_by_step_prompt());
  for (int i = 0; i < 20; ++i) {
    add_corpus("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
               "detailed, and polite answers to the user's questions. USER: <image>\nDescribe the image. ASSISTANT:");
    add_corpus("[INST] <image>\nImage description:\nThe image shows a red circle.\n\nWhat is this? [/INST]");
  }
  const std::string corpus_path = o.out + "/tokenizer/corpus.txt";
  const std::string corpus_text = corpus.str();
  const bool corpus_changed = !file_exists(corpus_path) || read_text_file(corpus_path) != corpus_text;
  if (corpus_changed) write_file_atomic(corpus_path, corpus_text);
  if (corpus_changed || !file_exists(sum.model_dir + "/tokenizer.model")) {
    train_tokenizer(p, o, corpus_path, sum.model_dir);
    sum.tokenizer_trained = true;
  }
  write_model_files(p, sum.model_dir);

  json m = manifest_json(p, o.seed, true);
  m["files"] = {{"base_train", "data/base_train.json"},      {"stage2_sft", "data/stage2_sft.json"},
                {"eval_sft", "data/eval_sft.json"},         {"base_pretrain", "data/base_pretrain.json"},
                {"eval_pretrain", "data/eval_pretrain.json"},
                {"unlabeled_images", "data/unlabeled_images.txt"}, {"image_dir", "images"},
                {"eval_requests", "eval/requests.jsonl"},    {"eval_answers", "gt/eval_answers.jsonl"},
                {"mmbench", "eval/mmbench.tsv"},             {"pope", "eval/pope.jsonl"},
                {"descriptions", "gt/descriptions.jsonl"},   {"model", "model"}};
  write_file_atomic(o.out + "/world.json", dump(m));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace stic::world
