/**
 * Config field tables: every knob of a config is declared once — type, default, range, doc —
 * and validation, defaults, presets, `--help`, command-line flags and config-file keys are all
 * derived from that one declaration. Libraries validate their configs with it; the `kiln`
 * command builds its flags from the same tables, so a knob can never exist in one place and
 * not the other.
 */

/** The value kinds a field can hold. `list` fields hold an array of their element type. */
export type ScalarFieldType = 'int' | 'number' | 'string' | 'boolean' | 'enum';

interface FieldCommon {
  /** One sentence for `--help` and error messages. */
  doc: string;
  /** `null` is a valid value ("off"); on the command line `none` or `null`. */
  nullable?: boolean;
  /** The value may be a list of the element type (flag text is comma-separated). */
  list?: boolean;
  /** With `list`: a single value is accepted too and kept as given (not wrapped). */
  scalarOrList?: boolean;
  /** No default: the value must be given. */
  required?: boolean;
  /** Flag name when it is not the key in kebab-case. */
  flag?: string;
}

export interface NumberField extends FieldCommon {
  type: 'int' | 'number';
  default?: number | null | readonly number[];
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

export interface StringField extends FieldCommon {
  type: 'string';
  default?: string | null | readonly string[];
  /** Longest accepted string (a guard against absurd input). */
  maxLength?: number;
}

export interface BooleanField extends FieldCommon {
  type: 'boolean';
  default?: boolean | null;
}

export interface EnumField extends FieldCommon {
  type: 'enum';
  values: readonly string[];
  default?: string | null | readonly string[];
}

export type FieldSpec = NumberField | StringField | BooleanField | EnumField;

/** A config's fields, keyed by the camelCase config key. */
export type FieldTable = Record<string, FieldSpec>;

export type ConfigValue = number | string | boolean | null | readonly (number | string)[];
export type Config = Record<string, ConfigValue>;

/**
 * A value that is not valid for its field. `key` is the config key, `source` where it came
 * from ("config key 'lr' in run.yaml", "flag --lr"), so callers can map it to their own error
 * kind (the CLI exits with 2).
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

/** True for a {@link ConfigError}, also one thrown by another copy of this module. */
export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError || (err instanceof Error && err.name === 'ConfigError');
}

/** `batchSize` → `batch-size` (or the field's own `flag`). */
export function flagName(key: string, spec?: FieldSpec): string {
  return spec?.flag ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function describeRange(spec: NumberField): string {
  const parts: string[] = [];
  if (spec.min !== undefined) parts.push(`${spec.exclusiveMin ? '>' : '≥'} ${spec.min}`);
  if (spec.max !== undefined) parts.push(`${spec.exclusiveMax ? '<' : '≤'} ${spec.max}`);
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

function describeElement(spec: FieldSpec, plural: boolean): string {
  const s = plural ? 's' : '';
  switch (spec.type) {
    case 'int':
      return `${plural ? '' : 'an '}integer${s}${describeRange(spec)}`;
    case 'number':
      return `${plural ? '' : 'a '}number${s}${describeRange(spec)}`;
    case 'string':
      return `${plural ? '' : 'a '}string${s}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `${plural ? 'values from' : 'one of'} ${spec.values.map((v) => `'${v}'`).join(', ')}`;
  }
}

/** What a valid value looks like, for error messages and help. */
export function describeType(spec: FieldSpec): string {
  let text = describeElement(spec, false);
  if (spec.list) text = spec.scalarOrList ? `${text}, or a list of ${describeElement(spec, true)}` : `a list of ${describeElement(spec, true)}`;
  if (spec.nullable) text += ', or null';
  return text;
}

function checkElement(spec: FieldSpec, value: unknown): boolean {
  switch (spec.type) {
    case 'int':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return false;
      if (spec.type === 'int' && !Number.isSafeInteger(value)) return false;
      if (spec.min !== undefined && (spec.exclusiveMin ? value <= spec.min : value < spec.min)) return false;
      if (spec.max !== undefined && (spec.exclusiveMax ? value >= spec.max : value > spec.max)) return false;
      return true;
    }
    case 'string':
      return typeof value === 'string' && (spec.maxLength === undefined || value.length <= spec.maxLength);
    case 'boolean':
      return typeof value === 'boolean';
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value);
  }
}

/**
 * Checks one value against its field and returns it. `where` names the source so the message
 * points at what to fix: "config key 'lr' in run.yaml must be a number > 0, got 0".
 */
export function checkValue(spec: FieldSpec, value: unknown, where: string, key?: string): ConfigValue {
  const ok =
    (value === null && spec.nullable === true) ||
    (Array.isArray(value) ? spec.list === true && value.every((v) => checkElement(spec, v)) : (!spec.list || spec.scalarOrList === true) && checkElement(spec, value));
  if (!ok) throw new ConfigError(`${where} must be ${describeType(spec)}, got ${preview(value)}`, key);
  return Array.isArray(value) ? [...value] : (value as ConfigValue);
}

/** A short rendering of a bad value for an error message (never the whole of a huge input). */
function preview(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function coerceElement(spec: FieldSpec, text: string): unknown {
  if (spec.type === 'int' || spec.type === 'number') {
    const n = text.trim() === '' ? Number.NaN : Number(text);
    return Number.isNaN(n) ? text : n;
  }
  if (spec.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return text;
}

/**
 * Turns a flag's text into the field's type (numbers, booleans, `none`/`null` for nullable
 * fields, comma-separated lists), then checks it.
 */
export function coerceFlag(spec: FieldSpec, text: string | boolean, flag: string, key?: string): ConfigValue {
  let value: unknown = text;
  if (typeof text === 'string') {
    if (spec.nullable && (text === 'none' || text === 'null')) value = null;
    else if (spec.list && (text.includes(',') || !spec.scalarOrList)) value = text.split(',').map((part) => coerceElement(spec, part.trim()));
    else value = coerceElement(spec, text);
  }
  return checkValue(spec, value, `flag --${flag}`, key);
}

/**
 * Validates a partial config (a config file, a preset, a library caller's input): every key
 * must be a field of the table — inherited names such as `__proto__` or `toString` included —
 * and every value well typed. Returns a fresh object holding only the given keys.
 */
export function checkConfigObject(table: FieldTable, raw: unknown, source: string): Partial<Config> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${source} must hold a mapping of config keys to values, got ${Array.isArray(raw) ? 'a list' : preview(raw)}`);
  }
  const out: Partial<Config> = {};
  for (const key of Object.keys(raw)) {
    const spec = Object.hasOwn(table, key) ? table[key] : undefined;
    if (!spec) {
      throw new ConfigError(`config key '${key}' in ${source} is not known; known keys: ${Object.keys(table).join(', ')}`, key);
    }
    const value = (raw as Record<string, unknown>)[key];
    if (value === undefined) continue;
    out[key] = checkValue(spec, value, `config key '${key}' in ${source}`, key);
  }
  return out;
}

/** The table's defaults (fields marked `required` are left out). */
export function fieldDefaults(table: FieldTable): Config {
  const out: Config = {};
  for (const [key, spec] of Object.entries(table)) {
    if (spec.required || spec.default === undefined) continue;
    out[key] = Array.isArray(spec.default) ? [...spec.default] : (spec.default as ConfigValue);
  }
  return out;
}

/**
 * Defaults, then each layer in order (later wins), each checked against the table; a required
 * field missing from every layer is an error naming it. Layers are `[source, values]` pairs,
 * e.g. `[["preset 'tiny'", preset], ['run.yaml', file]]`.
 */
export function resolveConfig(table: FieldTable, layers: ReadonlyArray<readonly [string, unknown]>): Config {
  let config = fieldDefaults(table);
  for (const [source, values] of layers) config = { ...config, ...checkConfigObject(table, values, source) } as Config;
  for (const [key, spec] of Object.entries(table)) {
    if (spec.required && config[key] === undefined) {
      throw new ConfigError(`config key '${key}' is required (${spec.doc})`, key);
    }
  }
  return config;
}
