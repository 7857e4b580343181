#include "stic/model/loaded_model.h"

#include <cstdio>

#include "stic/image/image.h"
#include "stic/text/template.h"
#include "stic/util/error.h"

namespace stic {

AspectMode parse_image_mode(const std::string& m) {
  if (m == "pad") return AspectMode::Pad;
  if (m == "anyres") return AspectMode::Anyres;
  if (m == "crop") return AspectMode::Crop;
  fail("--image-mode '", m, "' is not valid (expected pad, anyres or crop)");
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) fail("--device ", name, ": CUDA is not available in this build or machine");
    return torch::Device(name);
  }
  fail("--device '", name, "' is not valid (expected cpu, cuda or cuda:N)");
}

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device) {
  if (name == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") {
    if (!device.is_cuda()) fail("--dtype fp16 needs a CUDA device (CPU kernels lack Half; use fp32 or bf16)");
    return torch::kFloat16;
  }
  fail("--dtype '", name, "' is not valid (expected auto, fp32, bf16 or fp16)");
}

LoadOptions load_options(const std::string& device, const std::string& dtype, const std::string& vision_tower,
                         const std::string& image_backend) {
  LoadOptions o;
  o.device = parse_device(device);
  o.dtype = parse_dtype(dtype, o.device);
  o.vision_tower = vision_tower;
  if (!image_backend.empty()) parse_image_backend(image_backend);  // a bad value fails before loading
  o.image_backend = image_backend;
  return o;
}

namespace {
// The config is checked first, so a wrong folder is reported as such (not as a missing tokenizer).
Tokenizer tokenizer_after_config(const std::string& dir, const std::string& vision_tower, LlavaConfig* cfg) {
  *cfg = load_llava_config(dir, vision_tower);
  return Tokenizer::from_dir(dir);
}
}  // namespace

LoadedModel::LoadedModel(const std::string& model_dir, const LoadOptions& opts)
    : dir_(model_dir), tok_(tokenizer_after_config(model_dir, opts.vision_tower, &cfg_)), device_(opts.device) {
  model_ = load_llava(cfg_, opts);
  if (!opts.image_backend.empty()) set_image_backend(parse_image_backend(opts.image_backend));
  const auto& cfg = model_->cfg;
  if (cfg.layout == CheckpointLayout::LlavaHf) {
    placeholder_ = cfg.image_token_id;
    const int32_t id = tok_.token_to_id("<image>");
    if (id < 0) tok_.add_token("<image>", static_cast<int32_t>(placeholder_), true);
    else if (id != placeholder_)
      fail(model_dir, ": tokenizer maps <image> to id ", id, " but config.json says image_token_index ", placeholder_);
  } else {
    // Original LLaVA splits the prompt on "<image>" (id -200 in its code); any id outside the
    // vocabulary serves, as the placeholder is replaced by image features before embedding.
    // A tokenizer that already has "<image>" (one converted from llava-hf) keeps its id.
    placeholder_ = -1;
    for (const auto& a : tok_.added_tokens())
      if (a.content == "<image>") placeholder_ = a.id;
    if (placeholder_ < 0) {
      placeholder_ = std::max<int64_t>(cfg.text.vocab_size, tok_.vocab_size()) + 1;
      tok_.add_token("<image>", static_cast<int32_t>(placeholder_), true);
    }
  }
}

std::vector<int64_t> LoadedModel::prompt_ids(const std::string& user, const std::string& template_name, bool has_image,
                                        std::string* rendered) const {
  std::string name = template_name == "auto" ? model_->cfg.default_template : template_name;
  TemplateKind kind = template_from_name(name);
  std::string text;
  if (kind == TemplateKind::Raw) {
    const size_t markers = count_image_markers(user);
    if (has_image && markers != 1)
      fail("--template raw: prompt has ", markers, " <image> markers but 1 image was given (raw prompts are used "
           "verbatim, so write exactly one <image> where the image goes)");
    if (!has_image && markers != 0) fail("prompt has an <image> marker but no --image was given");
    text = user;
  } else {
    if (!has_image && count_image_markers(user) != 0) fail("prompt has an <image> marker but no --image was given");
    text = render_prompt(kind, {Turn{"user", has_image ? ensure_image_marker(user, true) : user}});
  }
  if (rendered) *rendered = text;
  auto ids32 = tok_.encode(text, /*add_bos=*/true);
  return std::vector<int64_t>(ids32.begin(), ids32.end());
}

ImageInput LoadedModel::load_image(const std::string& path, const ImageTransform& transform) const {
  try {
    return transform.none() ? preprocess(image_load(path)) : preprocess(transform.apply(image_load(path)));
  } catch (const Error& e) {  // preprocessing's errors (size limits) name the file too
    if (std::string(e.what()).rfind(path, 0) == 0) throw;
    fail(path, ": ", e.what());
  }
}

void LoadedModel::set_image_mode(AspectMode mode) {
  if (mode == AspectMode::Anyres && (model_->cfg.pinpoints.empty() || !model_->image_newline.defined()))
    fail(dir_, ": --image-mode anyres needs a LLaVA-1.6 (llava_next) model with grid pinpoints");
  model_->cfg.aspect = mode;
}

ImageInput LoadedModel::preprocess(const Image& im) const {
  const auto& cfg = model_->cfg;
  ClipPreprocessConfig pc;
  pc.shortest_edge = cfg.shortest_edge;
  pc.crop_h = cfg.crop_h;
  pc.crop_w = cfg.crop_w;
  pc.mean = cfg.image_mean;
  pc.std = cfg.image_std;
  pc.backend = cfg.image_backend;
  PixelBatch pb = preprocess_image(im, cfg.aspect, pc, cfg.pinpoints);
  ImageInput in;
  in.pixels = torch::from_blob(pb.data.data(), {pb.n, pb.c, pb.h, pb.w}, torch::kFloat32).clone();
  in.orig_h = pb.orig_h ? pb.orig_h : im.height;
  in.orig_w = pb.orig_w ? pb.orig_w : im.width;
  return in;
}

AdapterLoadReport LoadedModel::attach_adapter(const std::string& dir, AdapterPolicy policy, LoraConfig* cfg_out) {
  if (policy == AdapterPolicy::None) fail("attach_adapter: policy None attaches nothing");
  if (adapter_policy_ == AdapterPolicy::Merged && policy == AdapterPolicy::Active)
    fail(dir, ": an adapter is already merged into ", dir_, "; a second one cannot be trained on top of it");
  auto rep = load_adapter(model_, dir, cfg_out);
  if (policy == AdapterPolicy::Merged) merge_all_lora(model_);  // the engine then runs the plain (merged) weights
  adapter_policy_ = policy;
  return rep;
}

std::unique_ptr<LoadedModel> load_for_inference(const std::string& dir, const LoadOptions& opts,
                                                const std::string& adapter, const std::string& verb) {
  auto m = std::make_unique<LoadedModel>(dir, opts);
  if (!adapter.empty()) {
    const auto rep = m->attach_adapter(adapter, AdapterPolicy::Merged);
    if (!verb.empty())
      std::fprintf(stderr, "stic %s: adapter %s merged (%d LoRA modules)\n", verb.c_str(), adapter.c_str(),
                   rep.lora_modules);
  }
  m->model()->eval();
  return m;
}

}  // namespace stic
