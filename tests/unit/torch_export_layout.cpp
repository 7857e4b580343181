// stic export --layout: the tiny parity checkpoints converted llava-hf <-> original LLaVA and
// back (model/convert.h). Each conversion is loaded by stic's loader of the target layout and run
// on a real image with the target's own preprocessing, tokenizer and placeholder; fp32 weights
// are only relabelled, so the logits are expected bit-equal and the round trip's tensors
// byte-identical.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "stic/io/safetensors.h"
#include "stic/model/convert.h"
#include "stic/model/loaded_model.h"
#include "stic/model/lora.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;
#define kParity (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity")
#define kPeft (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/peft")
#define kImages (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/images")

std::string tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("stic_layout_" + tag + "_" + std::to_string(::getpid()));
  stic::remove_tree(d);
  return d.string();
}

json read_json(const std::string& path) { return json::parse(stic::read_text_file(path)); }

// The whole forward pass as the verbs run it: the model's own image preprocessing, template
// rendering, tokenizer and placeholder. Also returns the prompt ids with the placeholder as -1.
torch::Tensor real_logits(stic::LoadedModel& m, const std::string& image, std::vector<int64_t>* ids_out = nullptr) {
  auto im = m.load_image(kImages + "/" + image);
  auto ids = m.prompt_ids("What is shown in this image?", "vicuna_v1", true);
  torch::NoGradGuard ng;
  auto feats = m.model()->encode_image(im);
  auto e = m.model()->embed_with_image(ids, feats, m.placeholder_id());
  auto pos = torch::arange(e.size(1), torch::kInt64).unsqueeze(0);
  if (ids_out) {
    *ids_out = ids;
    for (auto& x : *ids_out)
      if (x == m.placeholder_id()) x = -1;
  }
  return m.model()->forward_embeds(e, pos, nullptr, false)[0];  // (T, V)
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Every tensor of a checkpoint folder under stic's name (the folder's own layout).
std::map<std::string, torch::Tensor> tensors_by_name(const std::string& dir) {
  const auto cfg = stic::load_llava_config(dir);
  stic::Checkpoint ck(dir);
  std::map<std::string, torch::Tensor> out;
  for (auto& k : ck.keys()) {
    const std::string n = stic::canonical_key(k, cfg.layout, false);
    if (!n.empty()) out[n] = ck.get(k).contiguous();
  }
  return out;
}

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  return std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * a.element_size()) == 0;
}

stic::ExportOptions to(stic::CheckpointLayout l) {
  stic::ExportOptions o;
  o.layout = l;
  return o;  // dtype Undefined: fp32 as loaded
}

// hf -> original -> hf for one llava-hf fixture: logits equal at each step, the round trip's
// tensors byte-identical, the config fields each layout needs.
void hf_round_trip(const std::string& name, const std::string& image, bool anyres) {
  stic::LoadOptions o;
  stic::LoadedModel src(kParity + "/" + name, o);
  std::vector<int64_t> ids_src, ids_orig, ids_back;
  const auto ref = real_logits(src, image, &ids_src);

  const std::string d1 = tmpdir(name + "_orig"), d2 = tmpdir(name + "_back");
  stic::export_merged(src.model(), d1, to(stic::CheckpointLayout::Original));
  auto c = read_json(d1 + "/config.json");
  EXPECT_EQ(c["model_type"], name == "next_mistral" ? "llava_mistral" : "llava_llama");
  EXPECT_EQ(c["architectures"][0], name == "next_mistral" ? "LlavaMistralForCausalLM" : "LlavaLlamaForCausalLM");
  EXPECT_EQ(c["mm_projector_type"], "mlp2x_gelu");
  EXPECT_EQ(c["mm_vision_select_layer"], -2);
  EXPECT_EQ(c["mm_vision_select_feature"], "patch");
  EXPECT_EQ(c["mm_hidden_size"], 64);
  EXPECT_EQ(c["mm_vision_tower"], "./vision_tower");
  EXPECT_EQ(c["vocab_size"], 1024);
  EXPECT_EQ(c["hidden_size"], 64);
  EXPECT_EQ(c["unfreeze_mm_vision_tower"], true);
  EXPECT_EQ(c["image_aspect_ratio"], anyres ? "anyres" : "pad");
  EXPECT_EQ(c["mm_patch_merge_type"], anyres ? "spatial_unpad" : "flat");
  EXPECT_EQ(c.contains("image_grid_pinpoints"), anyres);
  if (anyres) {
    EXPECT_EQ(c["image_grid_pinpoints"], read_json(kParity + "/" + name + "/config.json")["image_grid_pinpoints"]);
  }
  EXPECT_FALSE(c.contains("text_config"));
  auto vc = read_json(d1 + "/vision_tower/config.json");
  EXPECT_EQ(vc["model_type"], "clip_vision_model");
  EXPECT_EQ(vc["image_size"], 112);
  EXPECT_EQ(vc["patch_size"], 14);
  EXPECT_EQ(vc["hidden_size"], 64);
  auto vp = read_json(d1 + "/vision_tower/preprocessor_config.json");
  EXPECT_EQ(vp["crop_size"]["height"], 112);
  EXPECT_EQ(vp["size"]["shortest_edge"], 112);
  EXPECT_TRUE(stic::file_exists(d1 + "/tokenizer.model"));
  EXPECT_TRUE(stic::file_exists(d1 + "/tokenizer.json"));
  EXPECT_TRUE(stic::file_exists(d1 + "/vision_tower/model.safetensors"));
  {  // the tower under the original code's names, in the checkpoint
    stic::Checkpoint ck(d1);
    EXPECT_TRUE(ck.has("model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight"));
    EXPECT_TRUE(ck.has("model.mm_projector.0.weight"));
    EXPECT_TRUE(ck.has("model.mm_projector.2.bias"));
    EXPECT_EQ(ck.has("model.image_newline"), anyres);
    EXPECT_TRUE(ck.has("model.layers.1.self_attn.q_proj.weight"));
    EXPECT_TRUE(ck.has("lm_head.weight"));
  }

  stic::LoadedModel orig(d1, o);
  EXPECT_EQ(orig.config().layout, stic::CheckpointLayout::Original);
  EXPECT_EQ(orig.config().aspect, src.config().aspect);
  const auto l1 = real_logits(orig, image, &ids_orig);
  EXPECT_EQ(ids_orig, ids_src);
  ASSERT_EQ(l1.sizes(), ref.sizes());
  // measured: 0 (fp32 relabelling; same preprocessing, same ops)
  EXPECT_EQ(max_abs(l1, ref), 0.0) << name << " hf -> original";

  stic::export_merged(orig.model(), d2, to(stic::CheckpointLayout::LlavaHf));
  auto h = read_json(d2 + "/config.json");
  auto hs = read_json(kParity + "/" + name + "/config.json");
  for (const char* k : {"model_type", "image_token_index", "vision_feature_layer", "vision_feature_select_strategy",
                        "projector_hidden_act", "multimodal_projector_bias", "tie_word_embeddings"})
    EXPECT_EQ(h[k], hs[k]) << k;
  // the tokens one crop gives: (112 / 14)^2 (the fixture's 576 is LlavaConfig's default, which
  // its generator left as it was; transformers takes the count from the processor)
  EXPECT_EQ(h["image_seq_length"], 64);
  EXPECT_EQ(h["architectures"], hs["architectures"]);
  EXPECT_EQ(h.contains("image_grid_pinpoints"), anyres);
  if (anyres) {
    EXPECT_EQ(h["image_grid_pinpoints"], hs["image_grid_pinpoints"]);
  }
  for (const char* k : {"vocab_size", "hidden_size", "num_key_value_heads", "model_type", "max_position_embeddings"})
    EXPECT_EQ(h["text_config"][k], hs["text_config"][k]) << k;
  EXPECT_EQ(h["text_config"]["rope_theta"], hs["text_config"]["rope_parameters"]["rope_theta"]);
  for (const char* k : {"image_size", "patch_size", "hidden_size", "num_hidden_layers", "hidden_act"})
    EXPECT_EQ(h["vision_config"][k], hs["vision_config"][k]) << k;
  auto pp = read_json(d2 + "/preprocessor_config.json");
  EXPECT_EQ(pp["image_processor_type"], anyres ? "LlavaNextImageProcessor" : "LlavaImageProcessor");
  if (anyres) {
    EXPECT_EQ(pp["image_grid_pinpoints"], hs["image_grid_pinpoints"]);
  } else {
    EXPECT_EQ(pp["do_pad"], true);
  }
  EXPECT_EQ(read_json(d2 + "/processor_config.json")["patch_size"], 14);
  EXPECT_EQ(stic::read_text_file(d2 + "/tokenizer.json"), stic::read_text_file(kParity + "/" + name + "/tokenizer.json"));

  stic::LoadedModel back(d2, o);
  EXPECT_EQ(back.config().layout, stic::CheckpointLayout::LlavaHf);
  const auto l2 = real_logits(back, image, &ids_back);
  EXPECT_EQ(ids_back, ids_src);
  EXPECT_EQ(max_abs(l2, ref), 0.0) << name << " original -> hf";  // measured: 0

  const auto a = tensors_by_name(kParity + "/" + name), b = tensors_by_name(d2);
  ASSERT_EQ(a.size(), b.size());
  for (auto& [k, t] : a) {
    ASSERT_TRUE(b.count(k)) << k;
    EXPECT_TRUE(same_bytes(t, b.at(k))) << k;
  }
  stic::remove_tree(d1);
  stic::remove_tree(d2);
}

TEST(ExportLayout, Llava15HfToOriginalAndBack) { hf_round_trip("llava_llama", "china.jpg", false); }
TEST(ExportLayout, LlavaNextHfToOriginalAndBack) { hf_round_trip("next_mistral", "china.jpg", true); }

// original -> llava-hf for a tokenizer without "<image>" (tokenizer.model of 1000 pieces +
// tokenizer_config.json; the model has 1024 rows): "<image>" and "<pad>" added as the tokenizer's
// next ids, 1000 and 1001 — HF's tokenizers number added tokens after their own vocabulary,
// whatever id tokenizer_config.json declares (transformers 5.17 read id 1024 as 1000, and the
// model then found no image token) — within the model's rows, so the weights are unchanged.
TEST(ExportLayout, OriginalToHfAddsImageToken) {
  stic::LoadOptions o;
  stic::LoadedModel src(kParity + "/orig_mistral", o);
  std::vector<int64_t> ids_src, ids_hf;
  const auto ref = real_logits(src, "china.jpg", &ids_src);
  const std::string d1 = tmpdir("orig_hf"), d2 = tmpdir("orig_hf_orig");
  stic::export_merged(src.model(), d1, to(stic::CheckpointLayout::LlavaHf));
  auto c = read_json(d1 + "/config.json");
  EXPECT_EQ(c["model_type"], "llava_next");
  EXPECT_EQ(c["architectures"][0], "LlavaNextForConditionalGeneration");
  EXPECT_EQ(c["image_token_index"], 1000);
  EXPECT_EQ(c["pad_token_id"], 1001);
  EXPECT_EQ(c["text_config"]["vocab_size"], 1024);
  EXPECT_EQ(c["text_config"]["model_type"], "mistral");
  EXPECT_EQ(c["text_config"]["num_key_value_heads"], 2);
  EXPECT_EQ(c["text_config"]["rope_theta"], 1000000.0);
  EXPECT_FALSE(c["text_config"].contains("mm_vision_tower"));
  EXPECT_FALSE(c["text_config"].contains("image_aspect_ratio"));
  EXPECT_EQ(c["vision_config"]["image_size"], 112);
  EXPECT_EQ(c["vision_feature_layer"], -2);
  EXPECT_EQ(c["vision_feature_select_strategy"], "default");
  EXPECT_EQ(c["image_grid_pinpoints"], read_json(kParity + "/orig_mistral/config.json")["image_grid_pinpoints"]);
  auto tc = read_json(d1 + "/tokenizer_config.json");
  EXPECT_EQ(tc["added_tokens_decoder"]["1000"]["content"], "<image>");
  EXPECT_EQ(tc["added_tokens_decoder"]["1000"]["special"], true);
  EXPECT_EQ(tc["added_tokens_decoder"]["1001"]["content"], "<pad>");
  EXPECT_EQ(tc["pad_token"], "<pad>");
  auto pp = read_json(d1 + "/preprocessor_config.json");
  EXPECT_EQ(pp["image_processor_type"], "LlavaNextImageProcessor");
  EXPECT_EQ(pp["crop_size"]["height"], 112);

  stic::LoadedModel hf(d1, o);
  EXPECT_EQ(hf.placeholder_id(), 1000);
  EXPECT_EQ(hf.tokenizer().token_to_id("<image>"), 1000);
  const auto l1 = real_logits(hf, "china.jpg", &ids_hf);
  EXPECT_EQ(ids_hf, ids_src);
  ASSERT_EQ(l1.size(1), 1024);
  // the same weights, the same ids (the unpadded anyres grid agrees: same image token count,
  // checked by the ids): the same logits (bound 1e-5 as fp32 parity; measured 0)
  EXPECT_LT(max_abs(l1, ref), 1e-5);
  EXPECT_TRUE(torch::equal(hf.model()->language_model->model->embed_tokens->weight,
                           src.model()->language_model->model->embed_tokens->weight));
  // and back: the original layout; every tensor byte-identical
  stic::export_merged(hf.model(), d2, to(stic::CheckpointLayout::Original));
  auto oc = read_json(d2 + "/config.json");
  EXPECT_EQ(oc["vocab_size"], 1024);
  EXPECT_EQ(oc["mm_patch_merge_type"], "spatial_unpad");
  stic::LoadedModel back(d2, o);
  EXPECT_EQ(back.placeholder_id(), 1000);  // the tokenizer's <image>
  EXPECT_EQ(max_abs(real_logits(back, "china.jpg"), l1), 0.0);
  auto a = tensors_by_name(kParity + "/orig_mistral");
  {
    stic::Checkpoint clip(kParity + "/orig_mistral/clip");
    for (auto& k : clip.keys()) a[stic::canonical_key(k, stic::CheckpointLayout::Original, true)] = clip.get(k);
  }
  auto b = tensors_by_name(d2);
  for (auto& [k, t] : a) {
    ASSERT_TRUE(b.count(k)) << k;
    EXPECT_TRUE(same_bytes(t, b.at(k))) << k;
  }
  stic::remove_tree(d1);
  stic::remove_tree(d2);
}

// With an adapter merged: the export in the other layout gives the adapter model's logits.
TEST(ExportLayout, MergedAdapterBothWays) {
  stic::LoadOptions o;
  {
    stic::LoadedModel m(kParity + "/orig_mistral", o);
    m.attach_adapter(kPeft + "/released_style", stic::AdapterPolicy::Active);
    const auto with = real_logits(m, "china.jpg");
    const std::string d = tmpdir("adapter_hf");
    stic::export_merged(m.model(), d, to(stic::CheckpointLayout::LlavaHf));
    stic::LoadedModel re(d, o);
    const double err = max_abs(real_logits(re, "china.jpg").narrow(1, 0, 1024), with);
    // merged W + s BA (one fp32 rounding) against the unmerged adapter: measured 1.48e-5 (max abs)
    EXPECT_LT(err, 1e-4) << "orig + adapter -> llava-hf";
    stic::remove_tree(d);
  }
  {
    stic::LoadedModel m(kParity + "/llava_llama", o);
    m.attach_adapter(kPeft + "/hf_llava_llama", stic::AdapterPolicy::Active);
    const auto with = real_logits(m, "china.jpg");
    const std::string d = tmpdir("adapter_orig");
    stic::export_merged(m.model(), d, to(stic::CheckpointLayout::Original));
    stic::LoadedModel re(d, o);
    // measured 1.49e-5 (max abs), as above
    EXPECT_LT(max_abs(real_logits(re, "china.jpg"), with), 1e-4) << "llava-hf + adapter -> original";
    stic::remove_tree(d);
  }
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const stic::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ExportLayout, UnknownLayoutName) {
  EXPECT_EQ(error_of([] { stic::parse_layout("hf"); }), "--layout 'hf': unknown layout (expected llava-hf or original)");
  EXPECT_EQ(stic::parse_layout("llava-hf"), stic::CheckpointLayout::LlavaHf);
  EXPECT_EQ(stic::parse_layout("original"), stic::CheckpointLayout::Original);
}

// A tokenizer without "<image>" and without a file to record it in: the error names the file.
TEST(ExportLayout, MissingTokenizerFileIsNamed) {
  const std::string src = tmpdir("no_tokcfg"), out = tmpdir("no_tokcfg_out");
  fs::copy(kParity + "/orig_mistral", src, fs::copy_options::recursive);
  fs::remove(src + "/tokenizer_config.json");
  stic::LoadedModel m(src, stic::LoadOptions{});
  const std::string err = error_of([&] { stic::export_merged(m.model(), out, to(stic::CheckpointLayout::LlavaHf)); });
  EXPECT_NE(err.find(src + "/tokenizer_config.json: missing; the llava-hf layout needs an \"<image>\" token"),
            std::string::npos) << err;
  EXPECT_NE(err.find("tokenizer.model has none"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out));  // checked before anything is written
  stic::remove_tree(src);
  stic::remove_tree(out);
}

// Settings the target layout cannot express: errors naming config.json and the key.
TEST(ExportLayout, UnrepresentableSettingsAreErrors) {
  stic::LoadOptions o;
  {
    stic::LoadedModel m(kParity + "/llava_llama", o);
    m.model()->cfg.feature_layers = {-2, -1};
    const auto err = error_of([&] { stic::export_merged(m.model(), tmpdir("x1"), to(stic::CheckpointLayout::Original)); });
    EXPECT_EQ(err, kParity + "/llava_llama/config.json: vision_feature_layer [-2,-1] lists several layers; the original "
                             "layout's mm_vision_select_layer holds one");
  }
  {
    const std::string src = tmpdir("im_start");
    fs::copy(kParity + "/orig_mistral", src, fs::copy_options::recursive);
    auto j = read_json(src + "/config.json");
    j["mm_use_im_start_end"] = true;
    stic::write_file_atomic(src + "/config.json", j.dump(1));
    stic::LoadedModel m(src, o);
    const auto err = error_of([&] { stic::export_merged(m.model(), tmpdir("x2"), to(stic::CheckpointLayout::LlavaHf)); });
    EXPECT_EQ(err, src + "/config.json: mm_use_im_start_end true has no llava-hf form (the processor inserts only "
                         "<image> tokens)");
    stic::remove_tree(src);
  }
}

}  // namespace
