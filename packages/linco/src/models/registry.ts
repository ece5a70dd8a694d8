/** Models registered by name so a config picks one (as Pointcept's registry does). */
import { HashedNgramModel, type HashedNgramOptions } from './hashed-ngram.js';
import { TextCnnModel, type TextCnnOptions } from './text-cnn.js';
import type { LjpModel, ModelFactoryArgs } from './types.js';

export type ModelSpec =
  | ({ type: 'hashed-ngram' } & HashedNgramOptions)
  | ({ type: 'text-cnn' } & TextCnnOptions)
  | ({ type: string } & Record<string, unknown>);

type Builder = (args: ModelFactoryArgs, options: Record<string, unknown>) => LjpModel;

const registry = new Map<string, Builder>([
  ['hashed-ngram', (a, o) => new HashedNgramModel(a, o as HashedNgramOptions)],
  ['text-cnn', (a, o) => new TextCnnModel(a, o as TextCnnOptions)],
]);

export function registerModel(type: string, build: Builder): void {
  registry.set(type, build);
}

export function modelTypes(): string[] {
  return [...registry.keys()];
}

export function createModel(spec: ModelSpec, args: ModelFactoryArgs): LjpModel {
  const build = registry.get(spec.type);
  if (!build) throw new Error(`model.type: unknown model "${spec.type}" (registered: ${modelTypes().join(', ')})`);
  const { type: _type, ...options } = spec;
  return build(args, options);
}
