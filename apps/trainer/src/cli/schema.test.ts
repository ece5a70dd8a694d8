import { describe, expect, it } from 'vitest';
import { checkConfigObject, checkValue, coerceFlag, flagName } from './schema.js';
import { parseCommandLine } from './command.js';
import type { CommandSpec } from './command.js';

const schema = {
  steps: { type: 'int', default: 10, min: 1, doc: 'steps' },
  lr: { type: 'number', default: 0.1, min: 0, exclusiveMin: true, doc: 'lr' },
  order: { type: 'enum', values: ['z', 'hilbert'], default: 'z', doc: 'order' },
  shuffle: { type: 'boolean', default: false, doc: 'shuffle' },
  name: { type: 'string', default: '', doc: 'name' },
} as const;

describe('config schema', () => {
  it('names the key, the expected type and the value in errors', () => {
    expect(() => checkValue(schema.steps, 1.5, "config key 'steps'")).toThrow(`config key 'steps' must be an integer ≥ 1, got 1.5`);
    expect(() => checkValue(schema.lr, 0, "config key 'lr'")).toThrow(`must be a number > 0, got 0`);
    expect(() => checkValue(schema.order, 'x', "config key 'order'")).toThrow(`one of 'z', 'hilbert'`);
    expect(() => checkConfigObject(schema, { stpes: 3 }, 'a.yaml')).toThrow(`config key 'stpes' in a.yaml is not known`);
    expect(() => checkConfigObject(schema, [1], 'a.yaml')).toThrow('a.yaml must hold a mapping');
  });

  it('coerces flag text to the field type', () => {
    expect(coerceFlag(schema.steps, '12', 'steps')).toBe(12);
    expect(coerceFlag(schema.shuffle, 'false', 'shuffle')).toBe(false);
    expect(() => coerceFlag(schema.steps, '', 'steps')).toThrow('flag --steps must be an integer');
    expect(flagName('checkpointEvery')).toBe('checkpoint-every');
  });

  it('applies defaults < preset < flags', () => {
    const spec: CommandSpec = {
      path: ['x'],
      summary: '',
      schema,
      presets: { small: { doc: '', values: { steps: 3, order: 'hilbert' } } },
      defaultPreset: 'small',
      handler: async () => 0,
    };
    const parsed = parseCommandLine(spec, ['--lr', '0.5', '--shuffle'], {});
    expect(parsed.help).toBe(false);
    if (parsed.help) return;
    expect(parsed.ctx.config).toEqual({ steps: 3, lr: 0.5, order: 'hilbert', shuffle: true, name: '' });
    expect(() => parseCommandLine(spec, ['--preset', 'huge'], {})).toThrow("unknown preset 'huge'");
    expect(() => parseCommandLine(spec, ['--bogus'], {})).toThrow("Unknown option '--bogus'");
  });
});
