#include "stic/infer/runner.h"

#include "stic/image/image.h"
#include "stic/text/template.h"
#include "stic/util/error.h"

namespace stic {

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

LoadOptions load_options(const std::string& device, const std::string& dtype, const std::string& vision_tower) {
  LoadOptions o;
  o.device = parse_device(device);
  o.dtype = parse_dtype(dtype, o.device);
  o.vision_tower = vision_tower;
  return o;
}

namespace {
size_t count_image_markers(const std::string& s) {
  size_t n = 0;
  for (size_t p = s.find("<image>"); p != std::string::npos; p = s.find("<image>", p + 7)) ++n;
  return n;
}
}  // namespace

namespace {
// The config is checked first, so a wrong folder is reported as such (not as a missing tokenizer).
Tokenizer tokenizer_after_config(const std::string& dir, const std::string& vision_tower, LlavaConfig* cfg) {
  *cfg = load_llava_config(dir, vision_tower);
  return Tokenizer::from_dir(dir);
}
}  // namespace

Runner::Runner(const std::string& model_dir, const LoadOptions& opts)
    : tok_(tokenizer_after_config(model_dir, opts.vision_tower, &cfg_)), device_(opts.device) {
  model_ = load_llava(cfg_, opts);
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
    placeholder_ = std::max<int64_t>(cfg.text.vocab_size, tok_.vocab_size()) + 1;
    tok_.add_token("<image>", static_cast<int32_t>(placeholder_), true);
  }
}

std::vector<int64_t> Runner::prompt_ids(const std::string& user, const std::string& template_name, bool has_image,
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

ImageInput Runner::load_image(const std::string& path) const {
  const auto& cfg = model_->cfg;
  Image im = image_load(path);
  ClipPreprocessConfig pc;
  pc.shortest_edge = cfg.shortest_edge;
  pc.crop_h = cfg.crop_h;
  pc.crop_w = cfg.crop_w;
  pc.mean = cfg.image_mean;
  pc.std = cfg.image_std;
  AspectMode mode = cfg.aspect == ImageAspect::Anyres ? AspectMode::Anyres
                    : cfg.aspect == ImageAspect::Pad  ? AspectMode::Pad
                                                      : AspectMode::Crop;
  PixelBatch pb = preprocess_image(im, mode, pc, cfg.pinpoints);
  ImageInput in;
  in.pixels = torch::from_blob(pb.data.data(), {pb.n, pb.c, pb.h, pb.w}, torch::kFloat32).clone();
  in.orig_h = pb.orig_h ? pb.orig_h : im.height;
  in.orig_w = pb.orig_w ? pb.orig_w : im.width;
  return in;
}

namespace {
int64_t sample_token(const torch::Tensor& logits /*(V) fp32 cpu*/, float temperature, float top_p,
                     torch::Generator& gen) {
  if (temperature <= 0.0f) return logits.argmax().item<int64_t>();
  auto probs = torch::softmax(logits / temperature, -1);
  if (top_p < 1.0f) {
    auto sorted = probs.sort(/*dim=*/-1, /*descending=*/true);
    auto p = std::get<0>(sorted), idx = std::get<1>(sorted);
    auto cum = p.cumsum(-1);
    auto drop = (cum - p) > top_p;  // keep the smallest prefix whose mass reaches top_p
    p = p.masked_fill(drop, 0.0);
    auto choice = torch::multinomial(p / p.sum(), 1, false, gen);
    return idx[choice.item<int64_t>()].item<int64_t>();
  }
  return torch::multinomial(probs, 1, false, gen).item<int64_t>();
}
}  // namespace

ChatResult Runner::chat(const ChatRequest& req) {
  torch::NoGradGuard no_grad;
  ChatResult r;
  const bool has_image = !req.image.empty();
  auto ids = prompt_ids(req.prompt, req.template_name, has_image, &r.prompt_text);
  torch::Tensor feats;
  if (has_image) {
    ImageInput im = load_image(req.image);
    feats = model_->encode_image(im);  // (n, C)
    r.num_image_tokens = feats.size(0);
    const int64_t expect = model_->num_image_tokens(im.orig_h, im.orig_w);
    if (expect != r.num_image_tokens)
      fail("internal: image gave ", r.num_image_tokens, " features, the config predicts ", expect);
  }
  auto embeds = model_->embed_with_image(ids, feats, placeholder_);  // (1, T, C)
  const int64_t t = embeds.size(1);
  r.num_input_tokens = t;
  auto opts64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  KVCache cache;
  auto logits = model_->forward_embeds(embeds, torch::arange(t, opts64).unsqueeze(0), &cache, true);  // (1,1,V)
  r.last_logits = logits[0][0].to(torch::kCPU).clone();
  auto gen = torch::make_generator<torch::CPUGeneratorImpl>(req.seed);
  const int32_t eos = tok_.eos_id() >= 0 ? tok_.eos_id() : model_->cfg.text.eos_token_id;
  torch::Tensor cur = r.last_logits;
  for (int i = 0; i < req.max_new_tokens; ++i) {
    const int64_t next = sample_token(cur, req.temperature, req.top_p, gen);
    r.token_ids.push_back(static_cast<int32_t>(next));
    if (next == eos) break;
    if (i + 1 == req.max_new_tokens) break;
    auto e = model_->embed_tokens(torch::tensor({{next}}, opts64));  // (1, 1, C)
    auto pos = torch::full({1, 1}, t + i, opts64);
    cur = model_->forward_embeds(e, pos, &cache, true)[0][0].to(torch::kCPU);
  }
  r.text = tok_.decode(r.token_ids, /*skip_special=*/true);
  return r;
}

}  // namespace stic
