import { describe, expect, it } from 'vitest';
import { parseCommandLine, renderHelp } from './command.js';
import type { CommandSpec } from './command.js';

const schema = {
  steps: { type: 'int', default: 10, min: 1, doc: 'steps' },
  lr: { type: 'number', default: 0.1, min: 0, exclusiveMin: true, doc: 'lr' },
  order: { type: 'enum', values: ['z', 'hilbert'], default: 'z', doc: 'order' },
  shuffle: { type: 'boolean', default: false, doc: 'shuffle' },
  name: { type: 'string', default: '', doc: 'name' },
  capacity: { type: 'number', default: null, nullable: true, min: 0, doc: 'capacity factor' },
  orders: { type: 'enum', values: ['z', 'hilbert'], list: true, default: ['z'], doc: 'orders' },
} as const;

const spec: CommandSpec = {
  path: ['x'],
  summary: '',
  schema,
  presets: { small: { doc: '', values: { steps: 3, order: 'hilbert' } } },
  defaultPreset: 'small',
  handler: async () => 0,
};

describe('command line', () => {
  it('applies defaults < preset < flags, coercing nullable and list flags', () => {
    const parsed = parseCommandLine(spec, ['--lr', '0.5', '--shuffle', '--capacity', '1.25', '--orders', 'hilbert,z'], {});
    expect(parsed.help).toBe(false);
    if (parsed.help) return;
    expect(parsed.ctx.config).toEqual({ steps: 3, lr: 0.5, order: 'hilbert', shuffle: true, name: '', capacity: 1.25, orders: ['hilbert', 'z'] });
    const off = parseCommandLine(spec, ['--capacity', 'none'], {});
    if (!off.help) expect(off.ctx.config.capacity).toBeNull();
    expect(() => parseCommandLine(spec, ['--preset', 'huge'], {})).toThrow("unknown preset 'huge'");
    expect(() => parseCommandLine(spec, ['--bogus'], {})).toThrow("Unknown option '--bogus'");
    expect(() => parseCommandLine(spec, ['--orders', 'z,peano'], {})).toThrow("flag --orders must be a list of values from 'z', 'hilbert', got [\"z\",\"peano\"]");
  });

  it('reports which keys came from flags, and takes a quoted list of flags as a string value', () => {
    const parsed = parseCommandLine(spec, ['--lr', '0.5', '--no-shuffle', '--name', '--a 1 --b'], {});
    if (parsed.help) throw new Error('unexpected help');
    expect([...parsed.ctx.flagKeys].sort()).toEqual(['lr', 'name', 'shuffle']);
    expect(parsed.ctx.config.name).toBe('--a 1 --b');
    // a lone dash value is still refused (it may be a forgotten value)
    expect(() => parseCommandLine(spec, ['--name', '--lr'], {})).toThrow(/argument is ambiguous/);
  });

  it('requires required fields and lists every field in --help', () => {
    const needs: CommandSpec = { ...spec, schema: { ...schema, data: { type: 'string', required: true, doc: 'data folder' } } };
    expect(() => parseCommandLine(needs, [], {})).toThrow('--data is required (data folder)');
    const help = renderHelp(needs);
    for (const flag of ['--steps', '--lr', '--order', '--shuffle / --no-shuffle', '--capacity', '--orders', '--data']) expect(help).toContain(flag);
    expect(help).toContain('data folder (a string; required)');
    expect(help).toContain('a number ≥ 0, or null; default null');
  });
});
