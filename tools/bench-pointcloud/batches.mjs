// Prepared pre-training batches as one safetensors file for the PyTorch peer: per batch and
// view the features, every level's serialization layouts (forward/backward slots, [rows,
// length]) and pooling maps, and the student's mask; the config and the layout counts in the
// metadata. Names: b<batch>.v<view>.feat, b<batch>.mask, b<batch>.v<view>.l<level>.o<order>.
// {forward,backward,forwardSlot,backwardSlot}, b<batch>.v<view>.l<level>.pool.{segment,sorted,ptr}.
import { writeFileSync } from 'node:fs';
import { encodeSafetensors } from '@kiln/tensor';

const f32 = (shape, data) => ({ dtype: 'F32', shape, data });
const i32 = (shape, data) => ({ dtype: 'I32', shape, data });

/** Writes `batches` (PretrainBatch[]) and `config` to `path`. */
export function writeBatches(path, batches, config) {
  const tensors = {};
  const info = batches.map((batch, b) => {
    tensors[`b${b}.mask`] = f32([batch.points], batch.mask);
    const levels = [batch.view1, batch.view2].map((view, v) => {
      const pre = `b${b}.v${v + 1}`;
      tensors[`${pre}.feat`] = f32(view.feat.shape, view.feat.dataSync());
      return view.structure.levels.map((level, l) => {
        level.layouts.forEach((layout, o) => {
          const q = `${pre}.l${l}.o${o}`;
          tensors[`${q}.forward`] = i32([layout.rows, layout.length], layout.forward);
          tensors[`${q}.backward`] = i32([layout.rows, layout.length], layout.backward);
          tensors[`${q}.forwardSlot`] = i32([level.n], layout.forwardSlot);
          tensors[`${q}.backwardSlot`] = i32([level.n], layout.backwardSlot);
        });
        if (level.grouping) {
          const g = level.grouping;
          tensors[`${pre}.l${l}.pool.segment`] = i32([g.segment.length], g.segment);
          tensors[`${pre}.l${l}.pool.sorted`] = i32([g.sorted.length], g.sorted);
          tensors[`${pre}.l${l}.pool.ptr`] = i32([g.ptr.length], g.ptr);
        }
        return { level: l, n: level.n, orders: level.layouts.length };
      });
    });
    return { points: batch.points, levels };
  });
  writeFileSync(path, encodeSafetensors(tensors, { config: JSON.stringify(config), batches: JSON.stringify(info) }));
}
