/**
 * A subcommand is declared once (schema, presets, handler); `parseCommandLine` turns argv
 * into a validated config with the precedence defaults < preset < config file < flags.
 */
import { parseArgs } from 'node:util';
import { readConfigFile } from './config-file.js';
import { UsageError } from './errors.js';
import { TOKEN_VARIABLE, resolveToken } from './token.js';
import { type Config, type FieldTable, checkConfigObject, coerceFlag, describeType, fieldDefaults, flagName } from '@kiln/tensor';

export interface CommandContext {
  config: Config;
  /** Config keys set by a flag on the command line (not by a default, preset or config file). */
  flagKeys: ReadonlySet<string>;
  /** Where the values came from, for the run record. */
  preset: string | undefined;
  configFile: string | undefined;
  resume: boolean;
  quiet: boolean;
  token: string | undefined;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface CommandSpec {
  /** e.g. ['moe', 'train'] */
  path: string[];
  summary: string;
  /** Extra help text: what it does, examples. */
  details?: string;
  schema: FieldTable;
  presets?: Record<string, { doc: string; values: Partial<Config> }>;
  defaultPreset?: string;
  /** Training commands accept --resume (and the harness keys in their schema). */
  resumable?: boolean;
  handler(ctx: CommandContext): Promise<number>;
}

const COMMON_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  preset: { type: 'string', short: 'p' },
  quiet: { type: 'boolean', short: 'q' },
  token: { type: 'string' },
} as const;

export function renderHelp(spec: CommandSpec): string {
  const lines = [`kiln ${spec.path.join(' ')} — ${spec.summary}`, ''];
  if (spec.details) lines.push(spec.details.trimEnd(), '');
  lines.push(`Usage: kiln ${spec.path.join(' ')} [--preset NAME] [--config FILE.yaml|.json] [--<key> VALUE ...]`, '');
  lines.push('Options:');
  lines.push('  -h, --help            show this help');
  lines.push('  -c, --config FILE     YAML or JSON file of config keys (camelCase, as listed below)');
  lines.push('  -p, --preset NAME     start from a preset (built-in data, no file needed)');
  if (spec.resumable) {
    lines.push('      --resume          continue from the checkpoint in --out (same data order and optimizer state)');
    lines.push(`      --token TOKEN     bearer token for --server (or ${TOKEN_VARIABLE})`);
  }
  lines.push('  -q, --quiet           no progress bar');
  lines.push('', 'Config keys (flag form --kebab-case):');
  for (const [key, field] of Object.entries(spec.schema)) {
    const name = flagName(key, field);
    const flag = field.type === 'boolean' ? `--${name} / --no-${name}` : `--${name}`;
    lines.push(`  ${key.padEnd(20)} ${flag}`);
    const given = field.required ? 'required' : `default ${JSON.stringify(field.default)}`;
    lines.push(`      ${field.doc} (${describeType(field)}; ${given})`);
  }
  if (spec.presets) {
    lines.push('', 'Presets:');
    for (const [name, preset] of Object.entries(spec.presets)) {
      const mark = name === spec.defaultPreset ? ' (default)' : '';
      lines.push(`  ${name}${mark}: ${preset.doc}`);
    }
  }
  return lines.join('\n') + '\n';
}

export type Parsed = { help: true } | { help: false; ctx: Omit<CommandContext, 'stdout' | 'stderr'>; warnings: string[] };

export function parseCommandLine(spec: CommandSpec, argv: string[], env: Record<string, string | undefined>): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...COMMON_FLAGS };
  if (spec.resumable) options.resume = { type: 'boolean' };
  for (const [key, field] of Object.entries(spec.schema)) {
    const flag = flagName(key, field);
    if (field.type === 'boolean') {
      options[flag] = { type: 'boolean' };
      options[`no-${flag}`] = { type: 'boolean' };
    } else {
      options[flag] = { type: 'string' };
    }
  }
  // A string option's value may be a quoted list of flags (`--from-megatron "--a 1 --b"`);
  // parseArgs refuses a value that starts with '-', so such values are joined as `--opt=value`.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.startsWith('--') ? argv[i]!.slice(2) : '';
    const next = argv[i + 1];
    if (options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && /\s/.test(next)) {
      args.push(`--${name}=${next}`);
      i++;
    } else args.push(argv[i]!);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { help: true };
  if (parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument '${parsed.positionals[0]}' for kiln ${spec.path.join(' ')}`);
  }

  let config = fieldDefaults(spec.schema);
  const presetName = (values.preset as string | undefined) ?? spec.defaultPreset;
  if (presetName !== undefined) {
    const preset = spec.presets?.[presetName];
    if (!preset) {
      const known = Object.keys(spec.presets ?? {});
      throw new UsageError(`unknown preset '${presetName}' for kiln ${spec.path.join(' ')}; presets: ${known.join(', ') || '(none)'}`);
    }
    config = { ...config, ...checkConfigObject(spec.schema, preset.values, `preset '${presetName}'`) } as Config;
  }
  const configFile = values.config as string | undefined;
  if (configFile !== undefined) {
    config = { ...config, ...checkConfigObject(spec.schema, readConfigFile(configFile), configFile) } as Config;
  }
  const flagKeys = new Set<string>();
  for (const [key, field] of Object.entries(spec.schema)) {
    const flag = flagName(key, field);
    if (field.type === 'boolean') {
      if (values[flag] && values[`no-${flag}`]) throw new UsageError(`--${flag} and --no-${flag} contradict each other`);
      if (values[flag]) config[key] = true;
      if (values[`no-${flag}`]) config[key] = false;
      if (values[flag] || values[`no-${flag}`]) flagKeys.add(key);
    } else if (values[flag] !== undefined) {
      config[key] = coerceFlag(field, values[flag] as string, flag, key);
      flagKeys.add(key);
    }
  }
  for (const [key, field] of Object.entries(spec.schema)) {
    if (field.required && config[key] === undefined) throw new UsageError(`--${flagName(key, field)} is required (${field.doc})`);
  }
  const { token, warning } = resolveToken(values.token as string | undefined, env);
  if (config.server && !token) {
    throw new UsageError(`--server needs the eval server's token: --token TOKEN or ${TOKEN_VARIABLE} (a server started without one keeps a generated token in <its data dir>/token)`);
  }
  return {
    help: false,
    ctx: {
      config,
      flagKeys,
      preset: presetName,
      configFile,
      resume: Boolean(values.resume),
      quiet: Boolean(values.quiet),
      token,
    },
    warnings: config.server && warning ? [warning] : [],
  };
}
