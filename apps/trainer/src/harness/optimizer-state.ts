/**
 * tfjs optimizers expose their slots (Adam's moments, the iteration count) through
 * getWeights/setWeights; these helpers put them into a checkpoint under `optim/` and back,
 * so a resumed run takes exactly the step the uninterrupted one would have.
 */
import { type SafetensorsEntry, entryToTensor, tf } from '@kiln/tensor';

const PREFIX = 'optim/';
const EXTRA_PREFIX = 'optim-acc/';
/**
 * Adam and Adamax keep running products beta^t in private variables; setWeights recomputes
 * them with pow(), which differs from the running product in the last bits. Saving and
 * restoring them keeps a resumed run bit-identical.
 */
const ACCUMULATOR_FIELDS = ['accBeta1', 'accBeta2'] as const;

function accumulators(optimizer: tf.Optimizer): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const field of ACCUMULATOR_FIELDS) {
    const v = (optimizer as unknown as Record<string, unknown>)[field];
    if (v instanceof tf.Variable) out[field] = v;
  }
  return out;
}

export async function optimizerTensors(optimizer: tf.Optimizer): Promise<Record<string, tf.Tensor>> {
  const out: Record<string, tf.Tensor> = {};
  const weights = await optimizer.getWeights();
  // Slot order matters to setWeights (it matches slots to variables by position), so the
  // index leads the name.
  weights.forEach((w, i) => {
    out[`${PREFIX}${String(i).padStart(4, '0')}:${w.name}`] = w.tensor;
  });
  for (const [field, v] of Object.entries(accumulators(optimizer))) out[`${EXTRA_PREFIX}${field}`] = v;
  return out;
}

export async function restoreOptimizer(optimizer: tf.Optimizer, tensors: Record<string, SafetensorsEntry>): Promise<void> {
  const names = Object.keys(tensors)
    .filter((n) => n.startsWith(PREFIX))
    .sort();
  if (names.length === 0) throw new Error('checkpoint has no optimizer state (no optim/* tensors)');
  const weights = names.map((n) => ({ name: n.slice(n.indexOf(':') + 1), tensor: entryToTensor(tensors[n]!, n) }));
  await optimizer.setWeights(weights);
  for (const w of weights) w.tensor.dispose();
  for (const [field, v] of Object.entries(accumulators(optimizer))) {
    const entry = tensors[`${EXTRA_PREFIX}${field}`];
    if (!entry) continue;
    const t = entryToTensor(entry, `${EXTRA_PREFIX}${field}`);
    v.assign(t);
    t.dispose();
  }
}

export function modelTensors(variables: Record<string, tf.Variable>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(variables)) out[`model/${name}`] = v;
  return out;
}

export function restoreModel(variables: Record<string, tf.Variable>, tensors: Record<string, SafetensorsEntry>): void {
  for (const [name, v] of Object.entries(variables)) {
    const entry = tensors[`model/${name}`];
    if (!entry) throw new Error(`checkpoint lacks tensor 'model/${name}'`);
    const t = entryToTensor(entry, `model/${name}`);
    if (t.shape.join(',') !== v.shape.join(',')) {
      throw new Error(`checkpoint tensor 'model/${name}' has shape [${t.shape}], the model expects [${v.shape}]`);
    }
    v.assign(t);
    t.dispose();
  }
}
