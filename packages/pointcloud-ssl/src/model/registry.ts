/**
 * Models by name, as Pointcept's MODELS registry: a config names the model and the
 * registry builds it, so new backbones plug in without touching the trainers.
 */
import type { Rng } from '@kiln/tensor';
import type { BackboneConfig, PointBackbone } from './backbone.js';

export type ModelFactory = (config: BackboneConfig, rng: Rng) => PointBackbone;

const models = new Map<string, ModelFactory>();

/** Registers a backbone under `name`; registering a name twice is an error unless `replace`. */
export function registerModel(name: string, factory: ModelFactory, replace = false): void {
  if (models.has(name) && !replace) throw new Error(`registerModel: a model named '${name}' is already registered`);
  models.set(name, factory);
}

export function listModels(): string[] {
  return [...models.keys()].sort();
}

/** Builds the model `config.name` names. */
export function buildModel(config: BackboneConfig, rng: Rng): PointBackbone {
  const factory = models.get(config.name);
  if (!factory) throw new Error(`buildModel: no model named '${config.name}'; registered: ${listModels().join(', ') || '(none)'}`);
  return factory(config, rng);
}
