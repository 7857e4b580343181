// stic/model/init.h — weight initialisation for training a model from scratch (the built-in
// world's tiny LLaVA). Models are built uninitialised (a 7B model is loaded, not initialised).
//
// HF's _init_weights conventions (LlamaPreTrainedModel / CLIP with initializer_range):
//   linear and conv weights, embeddings, CLIP class embedding, image_newline ~ N(0, std)
//   biases = 0; RMSNorm / LayerNorm weights = 1, LayerNorm biases = 0
// LoRA adapters attached at the time keep PEFT's own init (A kaiming-uniform, B = 0).
#pragma once

#include <cstdint>

#include "stic/model/llava.h"

namespace stic {

// Draws from a CPU generator seeded with `seed`, so the result does not depend on the device.
void init_weights(Llava& model, double std = 0.02, uint64_t seed = 0);
// A model of `cfg` with freshly initialised weights on (device, dtype).
Llava make_initialized_llava(const LlavaConfig& cfg, double std, uint64_t seed, const torch::Device& device,
                             torch::ScalarType dtype);

}  // namespace stic
