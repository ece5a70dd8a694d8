/**
 * JSON schemas of every request body. Fastify validates with them before a handler runs
 * and answers 400 naming the field (`body/points/3/value must be number`).
 */
import { KEY_PATTERN, MAX_KEY_LENGTH, MAX_METRIC_LENGTH, METRIC_PATTERN } from './series-name.js';

const finite = { type: 'number' } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
/** Steps are exact integers: beyond 2^53 − 1 JSON numbers lose integers silently. */
const step = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
/**
 * A client's id for one request (a metrics batch, a run, a result): sent again with a
 * retried request, it makes the server answer the first outcome instead of storing twice.
 */
export const requestId = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$' } as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' } },
} as const;

export const createRunBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name,
    kind: { type: 'string', minLength: 1, maxLength: 100, default: 'generic' },
    config: { type: 'object', default: {} },
    requestId,
  },
} as const;

/** Tags and a note on a run: at least one of them; what is given replaces what was there. */
export const annotateRunBody = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: {
    tags: {
      type: 'array',
      maxItems: 32,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f,]+$' },
    },
    note: { type: 'string', maxLength: 10_000, pattern: '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$' },
  },
} as const;

export const MAX_POINTS_PER_BATCH = 10_000;

export const metricsBody = {
  type: 'object',
  required: ['points'],
  additionalProperties: false,
  properties: {
    batchId: requestId,
    points: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_POINTS_PER_BATCH,
      items: {
        type: 'object',
        required: ['step', 'name', 'value'],
        additionalProperties: false,
        properties: {
          step,
          name: { type: 'string', minLength: 1, maxLength: MAX_METRIC_LENGTH, pattern: METRIC_PATTERN },
          /** Which series of the metric (`judge=region:浙江省`, `rank=3`): one line each in the dashboard. */
          key: { type: 'string', minLength: 1, maxLength: MAX_KEY_LENGTH, pattern: KEY_PATTERN },
          value: finite,
          /** When the point was logged, ms since 1970 (default: when it arrives). */
          time: { type: 'number', minimum: 0, maximum: 8.64e15 },
        },
      },
    },
  },
} as const;

/** Point-cloud segmentation: mIoU and IoU per class, optionally a segmented cloud to view. */
export const pointcloudResultBody = {
  type: 'object',
  required: ['miou', 'classes'],
  additionalProperties: false,
  properties: {
    kind: { const: 'pointcloud' },
    requestId,
    split: { type: 'string', maxLength: 100 },
    miou: { type: 'number', minimum: 0, maximum: 1 },
    accuracy: { type: 'number', minimum: 0, maximum: 1 },
    classes: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['name', 'iou'],
        additionalProperties: false,
        properties: { name, iou: { type: ['number', 'null'], minimum: 0, maximum: 1 }, support: { type: 'integer', minimum: 0 } },
      },
    },
    pointsArtifact: { type: 'string', maxLength: 128 },
  },
} as const;

/** MoE: the fraction of tokens routed to each expert, per layer. */
export const moeResultBody = {
  type: 'object',
  required: ['layers'],
  additionalProperties: false,
  properties: {
    kind: { const: 'moe' },
    requestId,
    step,
    layers: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['layer', 'load'],
        additionalProperties: false,
        properties: {
          layer: { type: 'integer', minimum: 0 },
          load: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'number', minimum: 0 } },
        },
      },
    },
  },
} as const;

/** An estimate with its interval; lo ≤ hi is checked by the route (a schema cannot compare fields). */
const estimateWithCi = {
  type: 'object',
  required: ['value', 'lo', 'hi'],
  additionalProperties: false,
  properties: { value: finite, lo: finite, hi: finite, n: { type: 'integer', minimum: 0 } },
} as const;

/**
 * LInCo: the coefficient overall with its confidence interval, and per group (an interval
 * when the producer has one: @kiln/linco bootstraps the overall value, not each group).
 */
export const lincoResultBody = {
  type: 'object',
  required: ['overall', 'groups'],
  additionalProperties: false,
  properties: {
    kind: { const: 'linco' },
    requestId,
    /** Which LInCo metric ('term', 'charge'). */
    metric: { type: 'string', minLength: 1, maxLength: 100 },
    confidence: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    overall: estimateWithCi,
    /** The random-split baseline (model noise) with its interval, when measured. */
    baseline: estimateWithCi,
    groups: {
      type: 'array',
      minItems: 1,
      maxItems: 10_000,
      items: {
        type: 'object',
        required: ['group', 'value'],
        additionalProperties: false,
        properties: { ...estimateWithCi.properties, group: name },
      },
    },
  },
} as const;

export const resultBodies = { pointcloud: pointcloudResultBody, moe: moeResultBody, linco: lincoResultBody } as const;

export const artifactParams = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: idParams.properties.id, name: { type: 'string', minLength: 1, maxLength: 300 } },
} as const;

export const jobBody = {
  type: 'object',
  required: ['runId', 'kind', 'checkpoint', 'dataset'],
  additionalProperties: false,
  properties: {
    runId: idParams.properties.id,
    kind: { type: 'string', enum: ['segmentation', 'pointcloud'] },
    checkpoint: { type: 'string', minLength: 1, maxLength: 128, description: 'artifact name of the run' },
    dataset: { type: 'string', minLength: 1, maxLength: 128, description: 'artifact name of the run' },
    classes: { type: 'array', maxItems: 1000, items: name },
  },
} as const;
