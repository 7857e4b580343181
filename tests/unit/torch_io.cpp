// Unit tests of checkpoint reading/writing, config parsing, key mapping and the anyres
// arithmetic (hand-derived values in comments).
#include <gtest/gtest.h>

#include "stic/util/fs.h"

#include <filesystem>
#include <functional>
#include <fstream>

#include <nlohmann/json.hpp>

#include "stic/io/safetensors.h"
#include "stic/model/config.h"
#include "stic/model/llava.h"
#include "stic/model/loaded_model.h"
#include "stic/model/lora.h"
#include "stic/util/error.h"

namespace fs = std::filesystem;
namespace {

const std::string kParity = std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity";

std::string tmpdir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("stic_io_" + name + "_" + std::to_string(::getpid()));
  stic::remove_tree(p);
  fs::create_directories(p);
  return p.string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const stic::Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Safetensors, RoundTripKeepsDtypesShapesValuesAndMetadata) {
  auto d = tmpdir("rt");
  std::map<std::string, torch::Tensor> t = {
      {"a", torch::randn({3, 5})},
      {"b", torch::randn({7}).to(torch::kBFloat16)},
      {"c", torch::arange(6, torch::kInt64).view({2, 3})},
      {"d", torch::randn({2, 2}).to(torch::kFloat16)}};
  stic::save_safetensors(d + "/x.safetensors", t, {{"format", "pt"}});
  for (auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename(), "x.safetensors");  // no temp file left
  stic::SafetensorsFile f(d + "/x.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (auto& [k, v] : t) {
    auto r = f.get(k);
    EXPECT_EQ(r.scalar_type(), v.scalar_type()) << k;
    EXPECT_TRUE(torch::equal(r, v)) << k;
  }
}

TEST(Safetensors, BadHeadersAreLocatedErrors) {
  auto d = tmpdir("bad");
  write_file(d + "/short.safetensors", "abc");
  EXPECT_NE(error_of([&] { stic::SafetensorsFile f(d + "/short.safetensors"); }).find("short.safetensors: not a safetensors file"), std::string::npos);
  std::string h = "{not json}";
  std::string len(8, '\0');
  len[0] = static_cast<char>(h.size());
  write_file(d + "/json.safetensors", len + h);
  EXPECT_NE(error_of([&] { stic::SafetensorsFile f(d + "/json.safetensors"); }).find("header is not valid JSON"), std::string::npos);
  // dtype/shape need 16 bytes, offsets give 8
  h = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})";
  len.assign(8, '\0');
  len[0] = static_cast<char>(h.size());
  write_file(d + "/size.safetensors", len + h + std::string(8, '\0'));
  auto e = error_of([&] { stic::SafetensorsFile f(d + "/size.safetensors"); });
  EXPECT_NE(e.find("tensor 'w': data_offsets [0, 8) hold 8 bytes but dtype F32 and shape need 16"), std::string::npos) << e;
  h = R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})";
  len.assign(8, '\0');
  len[0] = static_cast<char>(h.size());
  write_file(d + "/dtype.safetensors", len + h + std::string(1, '\0'));
  EXPECT_NE(error_of([&] { stic::SafetensorsFile f(d + "/dtype.safetensors"); }).find("unsupported dtype 'Q4'"), std::string::npos);
}

TEST(Checkpoint, ShardedIndexIsReadAndMissingShardIsNamed) {
  stic::Checkpoint ck(kParity + "/next_llama_bf16");  // 3 shards + model.safetensors.index.json
  EXPECT_GT(ck.keys().size(), 50u);
  EXPECT_EQ(ck.get("image_newline").scalar_type(), torch::kBFloat16);
  auto d = tmpdir("shard");
  fs::copy_file(kParity + "/next_llama_bf16/model.safetensors.index.json", d + "/model.safetensors.index.json");
  fs::copy_file(kParity + "/next_llama_bf16/model-00001-of-00003.safetensors", d + "/model-00001-of-00003.safetensors");
  auto e = error_of([&] { stic::Checkpoint c(d); });
  EXPECT_NE(e.find("model.safetensors.index.json: shard 'model-0000"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

// tie_word_embeddings: after loading, the output projection is the embedding tensor itself (as
// HF's tie_weights()), so training updates one tensor from both uses; a saved lm_head.weight is
// ignored. (Before: two parameters sharing storage, each updated by AdamW on its own.)
TEST(Checkpoint, TiedEmbeddingsAreOneTensor) {
  auto d = tmpdir("tied");
  for (const auto& e : fs::directory_iterator(kParity + "/llava_llama")) fs::copy_file(e.path(), d + "/" + e.path().filename().string());
  nlohmann::json c = nlohmann::json::parse(stic::read_text_file(d + "/config.json"));
  c["tie_word_embeddings"] = true;
  c["text_config"]["tie_word_embeddings"] = true;
  write_file(d + "/config.json", c.dump());
  stic::Llava m = stic::load_llava(d, stic::LoadOptions{});
  auto& lm = m->language_model;
  ASSERT_TRUE(lm->lm_head->weight.is_same(lm->model->embed_tokens->weight));
  torch::manual_seed(0);
  const auto x = torch::randn({3, lm->lm_head->weight.size(1)});
  lm->lm_head(x).sum().backward();
  const auto g = lm->model->embed_tokens->weight.grad();
  ASSERT_TRUE(g.defined());  // d(sum x W^T)/dW: every row is the column sum of x
  EXPECT_TRUE(torch::allclose(g, x.sum(0).expand_as(g), 1e-5, 1e-6));
  // the registered lm_head parameter shares the storage and is not trained
  for (auto& p : m->named_parameters()) {
    if (p.key() == "language_model.lm_head.weight") {
      EXPECT_EQ(p.value().data_ptr(), lm->model->embed_tokens->weight.data_ptr());
    }
  }
  for (auto& [n, t] : stic::set_trainable(m, stic::LoraConfig{}, /*full=*/true)) EXPECT_NE(n, "language_model.lm_head.weight");
  const stic::Llava untied = stic::load_llava(kParity + "/llava_llama", stic::LoadOptions{});
  EXPECT_FALSE(untied->language_model->lm_head->weight.is_same(untied->language_model->model->embed_tokens->weight));
  // lm_head in modules_to_save would train nothing on a tied model: refused
  stic::LoraConfig head;
  head.modules_to_save = {"language_model.lm_head"};
  EXPECT_NE(error_of([&] { stic::set_trainable(m, head, false); }).find("ties lm_head to the input embeddings"), std::string::npos);
  stic::LoraConfig whole;  // the whole language model: the embedding trains (and with it the tied head)
  whole.modules_to_save = {"language_model"};
  bool embedding = false;
  for (auto& [n, t] : stic::set_trainable(m, whole, false)) {
    EXPECT_NE(n, "language_model.lm_head.weight");
    embedding |= n == "language_model.model.embed_tokens.weight";
  }
  EXPECT_TRUE(embedding);
  // an adapter that saves its own lm_head (trained on an untied model) would overwrite the tied
  // embedding when loaded: refused before the model is touched
  stic::Llava u = stic::load_llava(kParity + "/llava_llama", stic::LoadOptions{});
  stic::apply_lora(u, head);
  stic::save_adapter(u, head, d + "/adapter");
  const auto before = lm->model->embed_tokens->weight.clone();
  const auto e = error_of([&] { stic::load_adapter(m, d + "/adapter"); });
  EXPECT_NE(e.find("adapter_model.safetensors: the adapter saves its own lm_head"), std::string::npos) << e;
  EXPECT_TRUE(torch::equal(lm->model->embed_tokens->weight, before));
  int lora_modules = 0;
  for (auto& [n, l] : stic::named_linears(m)) lora_modules += l->has_lora();
  EXPECT_EQ(lora_modules, 0);  // nothing attached
}

TEST(Config, ParsesLlavaHfAndOriginalLayouts) {
  auto n = stic::load_llava_config(kParity + "/next_mistral");
  EXPECT_EQ(n.layout, stic::CheckpointLayout::LlavaHf);
  EXPECT_EQ(n.text.arch, "mistral");
  EXPECT_EQ(n.text.num_kv_heads, 2);
  EXPECT_DOUBLE_EQ(n.text.rope_theta, 1e6);  // from rope_parameters (transformers 5)
  EXPECT_EQ(n.aspect, stic::AspectMode::Anyres);
  EXPECT_EQ(n.pinpoints.size(), 5u);
  EXPECT_EQ(n.default_template, "mistral_instruct");
  auto l = stic::load_llava_config(kParity + "/llava_llama");
  EXPECT_EQ(l.aspect, stic::AspectMode::Pad);  // preprocessor_config.json do_pad = true
  EXPECT_EQ(l.text.num_kv_heads, 4);
  EXPECT_EQ(l.default_template, "vicuna_v1");
  auto b = stic::load_llava_config(kParity + "/next_llama_bf16");
  EXPECT_EQ(b.feature_layers, (std::vector<int>{-3, -1}));
  auto o = stic::load_llava_config(kParity + "/orig_mistral");
  EXPECT_EQ(o.layout, stic::CheckpointLayout::Original);
  EXPECT_EQ(o.image_token_id, -200);
  EXPECT_FALSE(o.unpad_round7);
  EXPECT_EQ(o.vision.hidden_size, 64);
}

TEST(Config, BadConfigsAreLocatedErrors) {
  auto d = tmpdir("cfg");
  write_file(d + "/config.json", R"({"model_type": "llava_next", "text_config": {"model_type": "gpt2"}})");
  EXPECT_NE(error_of([&] { stic::load_llava_config(d); }).find("text model_type 'gpt2' is not supported"), std::string::npos);
  write_file(d + "/config.json", R"J({"model_type": "llava_next", "text_config": {}, "image_grid_pinpoints": "(1x1),...,(3x3)"})J");
  EXPECT_NE(error_of([&] { stic::load_llava_config(d); }).find("image_grid_pinpoints given as a string"), std::string::npos);
  write_file(d + "/config.json", R"({"model_type": "llava_mistral", "mm_vision_tower": "openai/clip-vit-large-patch14-336"})");
  auto e = error_of([&] { stic::load_llava_config(d); });
  EXPECT_NE(e.find("vision tower 'openai/clip-vit-large-patch14-336' is not a local folder; pass --vision-tower"), std::string::npos) << e;
  write_file(d + "/config.json", "{oops");
  EXPECT_NE(error_of([&] { stic::load_llava_config(d); }).find("config.json: not valid JSON"), std::string::npos);
}

// Shapes that would divide by zero, allocate negative sizes or read a value of the wrong kind are
// errors naming config.json and the key (before: SIGFPE on zero heads, a raw JSON exception).
TEST(Config, ImpossibleShapesAndWrongTypesAreNamed) {
  auto d = tmpdir("cfgshape");
  const auto base = nlohmann::json::parse(stic::read_text_file(kParity + "/next_mistral/config.json"));
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = base;
    edit(j);
    write_file(d + "/config.json", j.dump());
    return error_of([&] { stic::load_llava_config(d); });
  };
  EXPECT_EQ(with([](nlohmann::json&) {}), "<no error>");  // the unedited config loads
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& j) { j["text_config"]["num_attention_heads"] = 0; }, "text num_attention_heads must be >= 1"},
      {[](nlohmann::json& j) { j["text_config"]["num_key_value_heads"] = 0; }, "text num_key_value_heads must be >= 1"},
      {[](nlohmann::json& j) { j["vision_config"]["num_attention_heads"] = 0; }, "vision num_attention_heads must lie in [1, 1024]"},
      {[](nlohmann::json& j) { j["vision_config"]["num_attention_heads"] = 5; }, "does not divide its hidden_size"},
      {[](nlohmann::json& j) { j["vision_config"]["patch_size"] = 0; }, "vision patch_size must lie in"},
      {[](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = -3; }, "text num_hidden_layers must lie in [1, 1024] (got -3)"},
      {[](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 100000; }, "text num_hidden_layers must lie in"},
      {[](nlohmann::json& j) { j["text_config"]["hidden_size"] = "64"; }, "'hidden_size' must be an integer (got \"64\")"},
      {[](nlohmann::json& j) { j["text_config"] = nullptr; }, "needs a text_config object"},
      {[](nlohmann::json& j) { j["projector_hidden_act"] = "relu"; }, "projector_hidden_act 'relu' is not supported"},
  };
  for (auto& [edit, want] : cases) {
    const std::string e = with(edit);
    EXPECT_NE(e.find(want), std::string::npos) << "got: " << e;
    EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  }
  stic::remove_tree(d);
}

// transformers 5 saves the image processor inside processor_config.json ("image_processor");
// a folder that has only that file is preprocessed by its settings, exactly as the same settings
// in preprocessor_config.json, and settings stic cannot honour are named.
TEST(Config, ProcessorConfigJsonOfTransformers5IsRead) {
  namespace fs = std::filesystem;
  const std::string src = kParity + "/llava_llama";
  auto make = [&](const std::string& tag, bool nested, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = tmpdir(tag);
    for (auto& e : fs::directory_iterator(src))
      if (e.path().filename() != "preprocessor_config.json") fs::copy_file(e.path(), d + "/" + e.path().filename().string());
    auto pj = nlohmann::json::parse(stic::read_text_file(src + "/preprocessor_config.json"));
    edit(pj);
    if (nested) write_file(d + "/processor_config.json", nlohmann::json({{"image_processor", pj}, {"processor_class", "LlavaProcessor"}}).dump());
    else write_file(d + "/preprocessor_config.json", pj.dump());
    return d;
  };
  auto other_means = [](nlohmann::json& p) {
    p["image_mean"] = {0.5, 0.5, 0.5};
    p["image_std"] = {0.25, 0.25, 0.25};
  };
  const std::string flat = make("pp_flat", false, other_means), nested = make("pp_nested", true, other_means);
  const std::string img = std::string(STIC_SOURCE_DIR) + "/tests/fixtures/images/china.jpg";
  stic::LoadedModel a(flat, stic::LoadOptions{}), b(nested, stic::LoadOptions{}), ref(src, stic::LoadOptions{});
  EXPECT_FLOAT_EQ(b.config().image_mean[0], 0.5f);
  const auto pa = a.load_image(img).pixels, pb = b.load_image(img).pixels, pr = ref.load_image(img).pixels;
  EXPECT_TRUE(torch::equal(pa, pb));        // the nested settings are the flat file's
  EXPECT_FALSE(torch::allclose(pa, pr));    // and they are not the defaults
  const std::string bad = make("pp_bad", true, [](nlohmann::json& p) { p["resample"] = 2; });
  const std::string e = error_of([&] { stic::load_llava_config(bad); });
  EXPECT_NE(e.find("processor_config.json (image_processor): resample 2 is not supported"), std::string::npos) << e;
  for (auto& d : {flat, nested, bad}) stic::remove_tree(d);
}

TEST(KeyMap, AllLayoutsMapToOurNames) {
  using stic::CheckpointLayout;
  using stic::canonical_key;
  // classic llava-hf (hub checkpoints)
  EXPECT_EQ(canonical_key("language_model.model.layers.3.mlp.up_proj.weight", CheckpointLayout::LlavaHf, false),
            "language_model.model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(canonical_key("vision_tower.vision_model.pre_layrnorm.weight", CheckpointLayout::LlavaHf, false),
            "vision_tower.vision_model.pre_layrnorm.weight");
  // transformers 5 save_pretrained (no vision_model level) and its in-memory names
  EXPECT_EQ(canonical_key("vision_tower.encoder.layers.0.mlp.fc1.bias", CheckpointLayout::LlavaHf, false),
            "vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias");
  EXPECT_EQ(canonical_key("model.language_model.norm.weight", CheckpointLayout::LlavaHf, false),
            "language_model.model.norm.weight");
  EXPECT_EQ(canonical_key("lm_head.weight", CheckpointLayout::LlavaHf, false), "language_model.lm_head.weight");
  EXPECT_EQ(canonical_key("model.image_newline", CheckpointLayout::LlavaHf, false), "image_newline");
  // original LLaVA
  EXPECT_EQ(canonical_key("model.mm_projector.0.weight", CheckpointLayout::Original, false),
            "multi_modal_projector.linear_1.weight");
  EXPECT_EQ(canonical_key("model.mm_projector.2.bias", CheckpointLayout::Original, false),
            "multi_modal_projector.linear_2.bias");
  EXPECT_EQ(canonical_key("model.layers.0.self_attn.q_proj.weight", CheckpointLayout::Original, false),
            "language_model.model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(canonical_key("model.vision_tower.vision_tower.vision_model.post_layernorm.weight", CheckpointLayout::Original, false),
            "vision_tower.vision_model.post_layernorm.weight");
  EXPECT_EQ(canonical_key("vision_model.embeddings.class_embedding", CheckpointLayout::Original, true),
            "vision_tower.vision_model.embeddings.class_embedding");
  EXPECT_EQ(canonical_key("text_model.embeddings.token_embedding.weight", CheckpointLayout::Original, true), "");
  EXPECT_EQ(canonical_key("model.layers.0.self_attn.rotary_emb.inv_freq", CheckpointLayout::Original, false), "");
}

TEST(Anyres, HandDerivedGridAndTokenCounts) {
  // china.jpg is 640x427 (w x h). Pinpoints (h, w) of next_mistral, crop 112:
  //   112x224: scale min(224/640, 112/427) = .2623 -> 167x112 = 18704 effective
  //   224x112: scale .175 -> 112x74 = 8288; 224x224: scale .35 -> 224x149 = 33376 (best)
  const std::vector<std::pair<int, int>> pins = {{112, 224}, {224, 112}, {224, 224}, {336, 112}, {112, 336}};
  EXPECT_EQ(stic::best_resolution(427, 640, pins), (std::pair<int, int>{224, 224}));
  // 2x2 crops of 8x8 tokens = 16x16 grid; 640/427 > 1 so rows are trimmed:
  //   new_h = int(427 * 16/640) = int(10.675) = 10, pad (16-10)//2 = 3 -> 10 rows x 16 cols
  EXPECT_EQ(stic::unpadded_grid(16, 16, 427, 640, true), (std::pair<int64_t, int64_t>{10, 16}));
  EXPECT_EQ(stic::unpadded_grid(16, 16, 427, 640, false), (std::pair<int64_t, int64_t>{10, 16}));
  // flower_portrait.jpg 424x640: columns trimmed: new_w = int(424 * 16/640) = 10 -> 16 x 10
  EXPECT_EQ(stic::unpadded_grid(16, 16, 640, 424, true), (std::pair<int64_t, int64_t>{16, 10}));
  // where the two rules part: a 55x176 image on a 48x48 grid has new_h = 55 * (48/176) =
  // 14.999999999999998 in doubles; HF's int(round(x, 7)) = 15 -> pad 16 -> 16 rows, original
  // LLaVA's int(x) = 14 -> pad 17 -> 14 rows (Python gives the same numbers); and transposed
  EXPECT_EQ(stic::unpadded_grid(48, 48, 55, 176, true), (std::pair<int64_t, int64_t>{16, 48}));
  EXPECT_EQ(stic::unpadded_grid(48, 48, 55, 176, false), (std::pair<int64_t, int64_t>{14, 48}));
  EXPECT_EQ(stic::unpadded_grid(48, 48, 176, 55, true), (std::pair<int64_t, int64_t>{48, 16}));
  EXPECT_EQ(stic::unpadded_grid(48, 48, 176, 55, false), (std::pair<int64_t, int64_t>{48, 14}));
  // a 640x192 strip: 112x336 wins (336x100 effective = 33600 vs 224x67 = 15008 at 224x224)
  EXPECT_EQ(stic::best_resolution(192, 640, pins), (std::pair<int, int>{112, 336}));
  // token counts: 64 base + rows * (cols + 1), equal to what HF computed (manifest.json)
  stic::LoadOptions o;
  auto m = stic::load_llava(kParity + "/next_mistral", o);
  EXPECT_EQ(m->num_image_tokens(427, 640), 64 + 10 * 17);  // 234
  EXPECT_EQ(m->num_image_tokens(640, 424), 64 + 16 * 11);  // 240
  EXPECT_EQ(m->num_image_tokens(512, 512), 64 + 16 * 17);  // 336 (camera.png: no padding)
}

}  // namespace
