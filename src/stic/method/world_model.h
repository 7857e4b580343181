// stic/method/world_model.h — `stic world`: the built-in world (world/world.h) plus its tiny
// LLaVA's initial weights (model/init.h: HF's random init, seeded by the world's seed, so the
// same seed gives the same bytes). It stands above both the world and the model layers.
#pragma once

#include "stic/world/world.h"

namespace stic {

struct WorldModelSummary {
  world::WorldSummary world;
  bool wrote_weights = false;  // the model was initialised now (absent, or the tokenizer was retrained)
};

// Builds (or completes) the world in o.out and its model folder. Throws stic::Error.
WorldModelSummary build_world_and_model(const world::WorldOptions& o);

}  // namespace stic
