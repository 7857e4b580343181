// stic/model/convert.h — a LLaVA checkpoint rewritten in the other checkpoint layout
// (stic export --layout llava-hf|original).
//
//   llava-hf  (LlavaForConditionalGeneration / LlavaNextForConditionalGeneration): config.json
//             with text_config + vision_config, preprocessor_config.json + processor_config.json,
//             keys language_model.model.*, language_model.lm_head, vision_tower.vision_model.*,
//             multi_modal_projector.linear_1/2, image_newline (LLaVA-NeXT).
//   original  (LlavaLlamaForCausalLM / LlavaMistralForCausalLM, haotian-liu/LLaVA): a flat text
//             config with the mm_* fields, keys model.layers.*, lm_head, model.mm_projector.0/2,
//             model.image_newline, and the vision tower twice: in the checkpoint under
//             model.vision_tower.vision_tower.vision_model.* (unfreeze_mm_vision_tower: true,
//             as the LLaVA-1.6 releases, so LLaVA's builder takes the weights from there) and as
//             a CLIPVisionModel folder OUT/vision_tower (config.json, preprocessor_config.json,
//             model.safetensors) that mm_vision_tower names ("./vision_tower": stic resolves it
//             against the model folder; LLaVA's code against the working directory).
//
// The weights are relabelled, never changed (one cast to ExportOptions::dtype), except in one
// case: original -> llava-hf when the tokenizer has no "<image>" token. Then, as HF's conversion
// scripts (convert_llava_weights_to_hf.py, convert_llava_next_weights_to_hf.py) do, "<image>" is
// added at the first free id (and "<pad>" after it when the tokenizer has no pad token), the
// vocabulary is padded to a multiple of 64 and the new rows of embed_tokens and lm_head are the
// mean of the existing rows (HF draws them around that mean with a small random spread; stic
// writes the mean itself, so the export is deterministic). The "<image>" row is never read (the
// image features replace it); the others only add logits for tokens the model never produced.
//
// A setting the target layout cannot express is a stic::Error naming the file and key (nothing
// is written then): several vision_feature_layers, a projector without bias or with another
// activation (to original); a "linear" projector, mm_use_im_start_end, spatial_unpad without
// anyres, anyres_max_N (to llava-hf).
//
// What each layout's code does differently with the same weights is not a setting and stays as
// the target layout's code does it: the unpadded anyres grid (HF rounds int(round(x, 7)),
// LLaVA truncates int(x); for a few image sizes the two differ by one row or column of tokens).
#pragma once

#include <string>

#include "stic/model/config.h"
#include "stic/model/lora.h"

namespace stic {

// "llava-hf" | "original" (throws stic::Error naming the accepted names).
CheckpointLayout parse_layout(const std::string& name);
const char* layout_name(CheckpointLayout layout);

// Merges every adapter, then writes the model into OUT in the layout opts.layout names
// (which differs from the model's own). Checks everything before writing anything.
void export_converted(Llava& model, const std::string& out_dir, const ExportOptions& opts);

}  // namespace stic
