/**
 * Config schemas: every knob of a subcommand is declared once with its type, range,
 * default and doc; the same declaration validates config files, coerces command-line
 * flags (`--batch-size 8` sets `batchSize`) and renders `--help`.
 */
import { UsageError } from './errors.js';

export type FieldSpec =
  | { type: 'int' | 'number'; default: number; doc: string; min?: number; max?: number; exclusiveMin?: boolean }
  | { type: 'string'; default: string; doc: string; optional?: boolean }
  | { type: 'boolean'; default: boolean; doc: string }
  | { type: 'enum'; values: readonly string[]; default: string; doc: string };

export type Schema = Record<string, FieldSpec>;
export type ConfigValue = number | string | boolean;
export type Config = Record<string, ConfigValue>;

/** `batchSize` → `batch-size`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function describeRange(spec: FieldSpec): string {
  if (spec.type !== 'int' && spec.type !== 'number') return '';
  const parts: string[] = [];
  if (spec.min !== undefined) parts.push(`${spec.exclusiveMin ? '>' : '≥'} ${spec.min}`);
  if (spec.max !== undefined) parts.push(`≤ ${spec.max}`);
  return parts.join(' and ');
}

/** What a valid value looks like, for error messages and help. */
export function describeType(spec: FieldSpec): string {
  switch (spec.type) {
    case 'int':
      return `an integer${describeRange(spec) ? ` ${describeRange(spec)}` : ''}`;
    case 'number':
      return `a number${describeRange(spec) ? ` ${describeRange(spec)}` : ''}`;
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.map((v) => `'${v}'`).join(', ')}`;
  }
}

/**
 * Checks one value against its field. `where` names the source ("config key 'lr' in
 * run.yaml", "flag --lr") so the message points at what to fix.
 */
export function checkValue(spec: FieldSpec, value: unknown, where: string): ConfigValue {
  const bad = (): never => {
    throw new UsageError(`${where} must be ${describeType(spec)}, got ${JSON.stringify(value)}`);
  };
  switch (spec.type) {
    case 'int':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad();
      if (spec.type === 'int' && !Number.isInteger(value)) return bad();
      if (spec.min !== undefined && (spec.exclusiveMin ? value <= spec.min : value < spec.min)) return bad();
      if (spec.max !== undefined && value > spec.max) return bad();
      return value;
    }
    case 'string':
      return typeof value === 'string' ? value : bad();
    case 'boolean':
      return typeof value === 'boolean' ? value : bad();
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value) ? value : bad();
  }
}

/** Turns a flag's text into the field's type (numbers, booleans), then checks it. */
export function coerceFlag(spec: FieldSpec, text: string | boolean, flag: string): ConfigValue {
  let value: unknown = text;
  if ((spec.type === 'int' || spec.type === 'number') && typeof text === 'string') {
    value = text.trim() === '' ? Number.NaN : Number(text);
    if (Number.isNaN(value)) value = text;
  }
  if (spec.type === 'boolean' && typeof text === 'string') {
    value = text === 'true' ? true : text === 'false' ? false : text;
  }
  return checkValue(spec, value, `flag --${flag}`);
}

/** Validates a parsed config object: every key known, every value well typed. */
export function checkConfigObject(schema: Schema, raw: unknown, source: string): Partial<Config> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError(`${source} must hold a mapping of config keys to values, got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`);
  }
  const out: Partial<Config> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = schema[key];
    if (!spec) {
      throw new UsageError(`config key '${key}' in ${source} is not known; known keys: ${Object.keys(schema).join(', ')}`);
    }
    out[key] = checkValue(spec, value, `config key '${key}' in ${source}`);
  }
  return out;
}

export function defaults(schema: Schema): Config {
  const out: Config = {};
  for (const [key, spec] of Object.entries(schema)) out[key] = spec.default;
  return out;
}
