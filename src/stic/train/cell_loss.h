// stic/train/cell_loss.h — the objective of `stic train-vision` (src/stic/train/vision.cpp):
// per grid cell, the shape and the colour of the object there, class 0 = empty
// (world::cell_labels). Header-only: no extra libtorch translation unit.
#pragma once

#include <torch/torch.h>

namespace stic {

// shape_logits (M, n_shapes + 1), color_logits (M, n_colors + 1), shape / color (M) int64 labels
// of M cells. Loss = cross-entropy of the shape and of the colour, each a mean over the occupied
// cells (label > 0), + binary cross-entropy of "empty" (the shape logits' class 0, target 1 at
// empty cells), a mean over all cells. Without an occupied cell only the last term is left (a
// mean over no cell would be NaN).
inline torch::Tensor cell_loss(const torch::Tensor& shape_logits, const torch::Tensor& color_logits,
                               const torch::Tensor& shape, const torch::Tensor& color) {
  namespace F = torch::nn::functional;
  const auto occ = shape > 0;
  const auto empty = F::binary_cross_entropy_with_logits(shape_logits.select(1, 0), (~occ).to(shape_logits.scalar_type()));
  if (!occ.any().item<bool>()) return empty;
  return F::cross_entropy(shape_logits.index({occ}), shape.index({occ})) +
         F::cross_entropy(color_logits.index({occ}), color.index({occ})) + empty;
}

}  // namespace stic
