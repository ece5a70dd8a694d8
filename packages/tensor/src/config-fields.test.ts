import { describe, expect, it } from 'vitest';
import { ConfigError, checkConfigObject, checkValue, coerceFlag, describeType, fieldDefaults, flagName, resolveConfig } from './config-fields.js';
import type { FieldTable } from './config-fields.js';

const table = {
  steps: { type: 'int', default: 10, min: 1, doc: 'steps' },
  lr: { type: 'number', default: 0.1, min: 0, exclusiveMin: true, doc: 'learning rate' },
  dropout: { type: 'number', default: 0, min: 0, max: 1, exclusiveMax: true, doc: 'dropout' },
  order: { type: 'enum', values: ['z', 'hilbert'], default: 'z', doc: 'order' },
  shuffle: { type: 'boolean', default: false, doc: 'shuffle' },
  name: { type: 'string', default: '', maxLength: 8, doc: 'name' },
  capacity: { type: 'number', default: null, nullable: true, doc: 'capacity factor' },
  balance: { type: 'enum', values: ['aux', 'seq', 'none'], list: true, scalarOrList: true, default: 'aux', doc: 'balancing' },
  coeffs: { type: 'number', list: true, default: [0.01], min: 0, doc: 'coefficients' },
  hidden: { type: 'int', required: true, min: 1, doc: 'hidden size', flag: 'hidden-size' },
} satisfies FieldTable;

describe('config field tables', () => {
  it('names the key, the expected type and the value in errors', () => {
    expect(() => checkValue(table.steps, 1.5, "config key 'steps'")).toThrow(`config key 'steps' must be an integer ≥ 1, got 1.5`);
    expect(() => checkValue(table.lr, 0, "config key 'lr'")).toThrow('must be a number > 0, got 0');
    expect(() => checkValue(table.dropout, 1, 'x')).toThrow('must be a number ≥ 0 and < 1, got 1');
    expect(() => checkValue(table.order, 'x', 'x')).toThrow(`one of 'z', 'hilbert'`);
    expect(() => checkValue(table.steps, 2 ** 53, 'x')).toThrow('must be an integer');
    expect(() => checkValue(table.steps, Number.NaN, 'x')).toThrow('got NaN');
    expect(() => checkValue(table.name, 'x'.repeat(9), 'x')).toThrow('must be a string');
    expect(() => checkValue(table.lr, null, 'x')).toThrow('got null');
    expect(checkValue(table.capacity, null, 'x')).toBeNull();
    expect(() => checkValue(table.coeffs, 0.5, 'x')).toThrow('must be a list of numbers ≥ 0, got 0.5');
    expect(() => checkValue(table.coeffs, [0.5, -1], 'x')).toThrow('got [0.5,-1]');
    expect(checkValue(table.balance, 'seq', 'x')).toBe('seq');
    expect(checkValue(table.balance, ['seq', 'aux'], 'x')).toEqual(['seq', 'aux']);
    expect(describeType(table.balance)).toBe("one of 'aux', 'seq', 'none', or a list of values from 'aux', 'seq', 'none'");
    expect(() => checkValue(table.steps, 'x'.repeat(500), 'x')).toThrow(/got "x+\.\.\.$/);
  });

  it('checks config objects: unknown and inherited keys refused, errors carry the key', () => {
    expect(() => checkConfigObject(table, { stpes: 3 }, 'a.yaml')).toThrow(`config key 'stpes' in a.yaml is not known`);
    expect(() => checkConfigObject(table, [1], 'a.yaml')).toThrow('a.yaml must hold a mapping');
    expect(() => checkConfigObject(table, null, 'a.yaml')).toThrow('a.yaml must hold a mapping');
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const raw = JSON.parse(`{"${key}": 1}`);
      expect(() => checkConfigObject(table, raw, 'a.json')).toThrow(`config key '${key}' in a.json is not known`);
    }
    try {
      checkConfigObject(table, { lr: -1 }, 'a.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('lr');
    }
    expect(checkConfigObject(table, { steps: 4, capacity: null }, 'a')).toEqual({ steps: 4, capacity: null });
  });

  it('coerces flag text to the field type', () => {
    expect(coerceFlag(table.steps, '12', 'steps')).toBe(12);
    expect(coerceFlag(table.shuffle, 'false', 'shuffle')).toBe(false);
    expect(coerceFlag(table.capacity, 'none', 'capacity')).toBeNull();
    expect(coerceFlag(table.capacity, '1.5', 'capacity')).toBe(1.5);
    expect(coerceFlag(table.coeffs, '0.1,0.2', 'coeffs')).toEqual([0.1, 0.2]);
    expect(coerceFlag(table.coeffs, '0.1', 'coeffs')).toEqual([0.1]);
    expect(coerceFlag(table.balance, 'seq', 'balance')).toBe('seq');
    expect(coerceFlag(table.balance, 'seq,aux', 'balance')).toEqual(['seq', 'aux']);
    expect(() => coerceFlag(table.steps, '', 'steps')).toThrow('flag --steps must be an integer');
    expect(() => coerceFlag(table.steps, 'none', 'steps')).toThrow('flag --steps must be an integer ≥ 1, got "none"');
    expect(flagName('checkpointEvery')).toBe('checkpoint-every');
    expect(flagName('hidden', table.hidden)).toBe('hidden-size');
  });

  it('resolves defaults < layers and requires required fields', () => {
    expect(fieldDefaults(table)).toEqual({
      steps: 10, lr: 0.1, dropout: 0, order: 'z', shuffle: false, name: '', capacity: null, balance: 'aux', coeffs: [0.01],
    });
    const config = resolveConfig(table, [
      ["preset 'tiny'", { steps: 3, hidden: 8 }],
      ['run.yaml', { steps: 5 }],
    ]);
    expect(config.steps).toBe(5);
    expect(config.hidden).toBe(8);
    expect(() => resolveConfig(table, [['x', { steps: 3 }]])).toThrow("config key 'hidden' is required (hidden size)");
    // Defaults are copies: mutating a resolved list never changes the table.
    (fieldDefaults(table).coeffs as number[]).push(1);
    expect(table.coeffs.default).toEqual([0.01]);
  });
});
