// stic/infer/runner.cpp — see runner.h.
#include "stic/infer/runner.h"

#include "stic/util/error.h"

namespace stic {

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

ChatResult reference_chat(LoadedModel& m, const ChatRequest& req) {
  torch::NoGradGuard no_grad;
  auto& model = m.model();
  const Tokenizer& tok = m.tokenizer();
  ChatResult r;
  const bool has_image = !req.image.empty();
  auto ids = m.prompt_ids(req.prompt, req.template_name, has_image, &r.prompt_text);
  torch::Tensor feats;
  if (has_image) {
    ImageInput im = m.load_image(req.image);
    feats = model->encode_image(im);  // (n, C)
    r.num_image_tokens = feats.size(0);
    const int64_t expect = model->num_image_tokens(im.orig_h, im.orig_w);
    if (expect != r.num_image_tokens)
      fail("internal: image gave ", r.num_image_tokens, " features, the config predicts ", expect);
  }
  auto embeds = model->embed_with_image(ids, feats, m.placeholder_id());  // (1, T, C)
  const int64_t t = embeds.size(1);
  r.num_input_tokens = t;
  auto opts64 = torch::TensorOptions().dtype(torch::kInt64).device(m.device());
  KVCache cache;
  auto logits = model->forward_embeds(embeds, torch::arange(t, opts64).unsqueeze(0), &cache, true);  // (1,1,V)
  r.last_logits = logits[0][0].to(torch::kCPU).clone();
  auto gen = torch::make_generator<torch::CPUGeneratorImpl>(req.seed);
  const int32_t eos = tok.eos_id() >= 0 ? tok.eos_id() : model->cfg.text.eos_token_id;
  torch::Tensor cur = r.last_logits;
  for (int i = 0; i < req.max_new_tokens; ++i) {
    const int64_t next = sample_token(cur, req.temperature, req.top_p, gen);
    r.token_ids.push_back(static_cast<int32_t>(next));
    if (next == eos) break;
    if (i + 1 == req.max_new_tokens) break;
    auto e = model->embed_tokens(torch::tensor({{next}}, opts64));  // (1, 1, C)
    auto pos = torch::full({1, 1}, t + i, opts64);
    cur = model->forward_embeds(e, pos, &cache, true)[0][0].to(torch::kCPU);
  }
  r.text = tok.decode(r.token_ids, /*skip_special=*/true);
  return r;
}

}  // namespace stic
