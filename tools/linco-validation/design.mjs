// The validation's shared design, used by validate.mjs and zero-check.mjs: the synthetic data
// sets and the judges' model, training and bootstrap settings.
import { generateCases } from '@kiln/linco';

export const REGIONS = ['Beijing', 'Liaoning', 'Hunan', 'Guangdong'];
export const COUNT = 2400;
export const TEST_SIZE = 300;
export const COMMON = {
  model: { type: 'hashed-ngram' },
  train: { epochs: 12, learningRate: 0.02 },
  bootstrap: { samples: 1000, confidence: 0.95 },
  seed: 1,
};

/** A synthetic data set of the design (charge flips 1.2 plus `inject`). */
export function syntheticCases(seed, inject, extra = {}) {
  return generateCases({ count: COUNT, seed, regions: REGIONS, inject: { chargeFlip: 1.2, ...inject }, ...extra });
}

export const f3 = (x) => x.toFixed(3);
