// The experiment end to end at a tiny size: every row, column, seed and interval of the plan
// lands in the artifact and the generated table, and a run killed mid-way resumes to the
// same artifact an uninterrupted run writes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENCODERS, ROWS, UsageError, planUnits, runExperiment } from './experiment.mjs';
import { COLUMNS, renderTables, summarize } from './table.mjs';

const dir = mkdtempSync(join(tmpdir(), 'kiln-csp-exp-'));
const TINY = { seeds: 2, points: 64, pretrainScenes: 4, heldOutScenes: 2, labelledScenes: 2, fractions: [0.1, 0.5], pretrainSteps: 1, finetuneSteps: 1, allLabelsSteps: 1, batchScenes: 2, probeSteps: 2, classifierCap: 100, channels: [8, 16] };

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CSP experiment (--quick at a tiny size)', () => {
  it('writes every unit, resumes after a kill, and renders every row, column and interval', async () => {
    const out = join(dir, 'a.json');
    // Kill after 7 units (the log call after a unit is written), then resume.
    let written = 0;
    await expect(
      runExperiment({
        scale: TINY,
        out,
        cacheDir: `${out}.encoders`,
        commit: 'test',
        log: (line) => {
          if (/^\d+\/[a-z]/.test(line) && ++written === 7) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    const partial = JSON.parse(readFileSync(out, 'utf8'));
    expect(Object.keys(partial.units)).toHaveLength(7);
    const data = await runExperiment({ scale: TINY, out, cacheDir: `${out}.encoders`, commit: 'test' });
    expect(data.resumed).toHaveLength(1);
    const units = planUnits(TINY);
    expect(Object.keys(data.units).sort()).toEqual(units.map((u) => u.key).sort());
    for (const key of Object.keys(partial.units)) expect(data.units[key]).toEqual(partial.units[key]);
    expect(data.rows.map((r) => r.id)).toEqual(['scratch', 'no-CSP + plain', 'no-CSP + SPD', 'CSP + plain', 'CSP + batch', 'CSP + SPD', 'MSC', 'MSC + CSP']);
    expect(Object.keys(data.encoders)).toEqual(Object.keys(ENCODERS));

    const summary = summarize(data);
    for (const f of TINY.fractions) {
      for (const row of ROWS) {
        for (const col of COLUMNS) {
          const cell = summary[f][row.id][col.metric];
          expect(Object.keys(cell.values)).toEqual(['0', '1']);
          expect(Number.isFinite(cell.mean) && Number.isFinite(cell.half)).toBe(true);
          if (row.id !== 'scratch') expect(Number.isFinite(cell.vsScratch.half)).toBe(true);
          if (row.noCsp) expect(Number.isFinite(cell.vsNoCsp.mean)).toBe(true);
        }
      }
      // Rows sharing an encoder share its probe; scratch's probe is its own.
      expect(summary[f]['CSP + plain'].probe.values).toEqual(summary[f]['CSP + SPD'].probe.values);
    }
    for (let seed = 0; seed < TINY.seeds; seed++) {
      const prop = data.units[`${seed}/propagation`];
      expect(prop['distill-CSP'].sceneA).toBeGreaterThan(0);
      expect(prop['distill-CSP'].bins.some((b) => b.points > 0 && b.change > 0)).toBe(true);
      const cls = data.units[`${seed}/classifiers`];
      for (const k of ['all', ...TINY.fractions]) expect(cls[k].logistic).toBeGreaterThanOrEqual(0);
    }
    const table = renderTables(data);
    for (const row of ROWS) expect(table).toContain(`| ${row.id} |`);
    for (const col of COLUMNS) expect(table).toContain(col.title);
    expect(table).toMatch(/logistic regression/);
    expect(table).toMatch(/± \d/);
    // An artifact of another scale is not resumed.
    await expect(runExperiment({ scale: { ...TINY, seeds: 3 }, out, cacheDir: `${out}.encoders`, commit: 'test' })).rejects.toThrow(UsageError);
    // ~10–20 s on a quiet machine; the limit leaves room for a loaded one.
  }, 240_000);
});

describe('experiment CLI', () => {
  it('rejects bad arguments with exit code 2 and a message naming them', async () => {
    const { spawnSync } = await import('node:child_process');
    const cli = new URL('./cli.mjs', import.meta.url).pathname;
    for (const [args, message] of [
      [['--', '--seeds', '0'], /--seeds must be a positive integer, got "0"/],
      [['--bogus'], /unknown argument "--bogus"/],
      [['--out'], /--out needs a file name/],
    ]) {
      const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
