import type { SafetensorsEntry, SafetensorsFile } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { JobInputError, checkClassNames, scenesFor, segmentationInputs } from './job-inputs.js';

const file = (tensors: Record<string, SafetensorsEntry>, metadata: Record<string, string> = {}): SafetensorsFile => ({ tensors, metadata });
const i32 = (...v: number[]): SafetensorsEntry => ({ dtype: 'I32', shape: [v.length], data: Int32Array.from(v) });

describe('segmentationInputs', () => {
  const labels = i32(0, 1, 2, 3, -1, 1);
  const predictions = i32(0, 1, 2, 3, 0, 2);

  it('takes the class count from logits, then names, then the largest label or prediction', () => {
    const logits: SafetensorsEntry = { dtype: 'F32', shape: [6, 5], data: Float32Array.from({ length: 30 }, (_, i) => (i % 5 === (Math.floor(i / 5) % 4) ? 1 : 0)) };
    const fromLogits = segmentationInputs(file({ logits }), file({ labels }));
    expect(fromLogits.classes).toHaveLength(5);
    expect([...fromLogits.predictions]).toEqual([0, 1, 2, 3, 0, 1]);
    const named = segmentationInputs(file({ predictions }), file({ labels }, { classes: JSON.stringify(['a', 'b', 'c', 'd', 'e', 'f']) }));
    expect(named.classes).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(segmentationInputs(file({ predictions }), file({ labels }), ['w', 'x', 'y', 'z']).classes).toEqual(['w', 'x', 'y', 'z']);
    expect(segmentationInputs(file({ predictions }), file({ labels })).classes).toEqual(['class 0', 'class 1', 'class 2', 'class 3']);
  });

  it('refuses labels and predictions outside the classes instead of growing the class count', () => {
    const far = i32(0, 1, 2, 20000, -1, 1);
    expect(() => segmentationInputs(file({ predictions }), file({ labels: far }, { classes: '["a","b","c","d"]' }))).toThrow(
      "data set tensor 'labels': point 3 has label 20000, outside the 4 classes 0..3 (use -1 for points to ignore)",
    );
    expect(() => segmentationInputs(file({ predictions }), file({ labels: far }))).toThrow('reach 20000, which implies 20001 classes (more than 1000); name the classes');
    expect(() => segmentationInputs(file({ predictions }), file({ labels: i32(0, 1, 2, 3, -2, 1) }))).toThrow('point 4 has label -2');
    expect(() => segmentationInputs(file({ predictions: i32(0, 1, 2, 9, 0, 1) }), file({ labels }), ['a', 'b', 'c', 'd'])).toThrow(
      "checkpoint tensor 'predictions': point 3 is predicted as 9, outside the 4 classes 0..3",
    );
    expect(() => segmentationInputs(file({ predictions: i32(0, 1, 2, 3, 0, -1) }), file({ labels }))).toThrow('point 5 is predicted as -1');
  });

  it('checks shapes, dtypes and class names, naming the tensor', () => {
    const cases: [SafetensorsFile, SafetensorsFile, string][] = [
      [file({ predictions: i32(0, 1) }), file({ labels }), "checkpoint tensor 'predictions' has shape [2], expected [6]"],
      [file({}), file({ labels }), "neither 'predictions' [N] nor 'logits' [N, C]"],
      [file({ predictions }), file({}), "the data set has no tensor 'labels'"],
      [file({ predictions }), file({ labels: { dtype: 'F32', shape: [6], data: new Float32Array(6) } }), "data set tensor 'labels' has dtype F32; an integer dtype"],
      [file({ logits: { dtype: 'F32', shape: [6], data: new Float32Array(6) } }), file({ labels }), "checkpoint tensor 'logits' has shape [6], expected [6, ·]"],
      [file({ logits: { dtype: 'F32', shape: [6, 2], data: new Float32Array(12) } }), file({ labels }, { classes: '["a","b","c"]' }), '3 class names for logits of 2 classes'],
      [file({ predictions }), file({ labels }, { classes: 'not json' }), "data set metadata 'classes' is not JSON"],
      [file({ predictions }), file({ labels }, { classes: '{"a":1}' }), "data set metadata 'classes' must be a JSON list of class names"],
      [file({ predictions }), file({ labels }, { classes: '["a","b\\u0007","c","d"]' }), "data set metadata 'classes'[1] = \"b\\u0007\" is not a class name"],
      [file({ predictions }), file({ labels }, { classes: JSON.stringify(['a', 'b', 'c', 7]) }), "data set metadata 'classes'[3] = 7 is not a class name"],
      [file({ predictions }), file({ labels: { dtype: 'I64', shape: [6], data: BigInt64Array.of(0n, 1n, 2n, 3n, 2n ** 40n, 1n) } }), "data set tensor 'labels': value 1099511627776 at index 4 is out of range"],
      [file({ predictions }), file({ labels, points: { dtype: 'F32', shape: [6, 2], data: new Float32Array(12) } }), "data set tensor 'points' has shape [6, 2], expected [6, 3]"],
    ];
    for (const [checkpoint, data, message] of cases) {
      expect(() => segmentationInputs(checkpoint, data), message).toThrow(JobInputError);
      expect(() => segmentationInputs(checkpoint, data), message).toThrow(message);
    }
    expect(() => checkClassNames(Array.from({ length: 1001 }, (_, i) => `c${i}`), 'job classes')).toThrow('lists 1001 classes; 1 to 1000 are allowed');
  });
});

describe('scenesFor', () => {
  const n = 6;
  const coord: SafetensorsEntry = { dtype: 'F32', shape: [n, 3], data: Float32Array.from({ length: 3 * n }, (_, i) => i / 10) };
  const color: SafetensorsEntry = { dtype: 'F32', shape: [n, 3], data: new Float32Array(3 * n).fill(0.5) };
  const model = { numClasses: 4, color: true, normal: false };
  const data = (over: Record<string, SafetensorsEntry | undefined>) =>
    file(Object.fromEntries(Object.entries({ coord, color, label: i32(0, 1, 2, 3, -1, 0), offset: i32(2, 6), ...over }).filter(([, v]) => v !== undefined)) as Record<string, SafetensorsEntry>);

  it('accepts concatenated scenes that fit the model', () => {
    const scenes = scenesFor(data({}), model);
    expect([...scenes.offset]).toEqual([2, 6]);
    expect(scenes.color).toBeDefined();
    expect(scenes.normal).toBeUndefined();
    expect(scenesFor(data({ color: undefined }), { ...model, color: false }).color).toBeUndefined();
  });

  it('refuses what does not fit, naming the tensor and the value', () => {
    const cases: [SafetensorsFile, string][] = [
      [data({ label: i32(0, 1, 2, 4, 0, 0) }), "data set tensor 'label': point 3 has label 4, outside the 4 classes 0..3"],
      [data({ label: i32(0, 1, 2, 3, 0) }), "data set tensor 'label' has shape [5], expected [6]"],
      [data({ color: undefined }), "the data set (the model uses color) has no tensor 'color'"],
      [data({ coord: { dtype: 'F32', shape: [n, 2], data: new Float32Array(2 * n) } }), "data set tensor 'coord' has shape [6, 2], expected [·, 3]"],
      [data({ coord: { ...coord, data: Float32Array.from(coord.data as Float32Array, (v, i) => (i === 4 ? Number.NaN : v)) } }), 'coord of point 1 is not finite'],
      [data({ offset: i32(4, 2, 6) }), 'offset[1] = 2 is smaller than the previous entry 4'],
      [data({ offset: i32(2, 5) }), 'offset ends at 5 but coord holds 6 points'],
      [data({ offset: i32(2, 2, 6) }), 'scene 1 has no points'],
      [data({ offset: { dtype: 'I32', shape: [0], data: new Int32Array(0) } }), 'there are no scenes'],
      [data({ color: { ...color, data: new Float32Array(3 * n).fill(2) } }), 'color of point 0 is 2, outside 0..1'],
    ];
    for (const [bad, message] of cases) expect(() => scenesFor(bad, model), message).toThrow(message);
  });
});
