/**
 * End-to-end tests of `kiln linco run` and `kiln linco analyze` through the built binary:
 * synthetic cases and a hand-written CAIL2018 file with only the published fields, the
 * eval-server uploads, and bad input as a hostile user would give it (exit 2, naming it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LINCO_FIELDS, resolveLincoConfig } from '@kiln/linco';
import { describe, expect, it } from 'vitest';
import { kiln, losses, startFakeEvalServer, tempDir } from './test-support.js';

const CAIL = fileURLToPath(new URL('../../../packages/linco/test-fixtures/cail2018-sample.jsonl', import.meta.url));
/** Small judges: the fixture has 45 usable cases. */
const SMALL = ['--preset', 'tiny', '--test-size', '10', '--epochs', '3', '--bootstrap-samples', '100'];

describe('kiln linco run', () => {
  it('runs the tiny preset (the library preset, key for key) and reports LInCo with the null interval to the server', async () => {
    const fake = await startFakeEvalServer();
    try {
      const out = join(tempDir(), 'linco');
      const r = await kiln(['linco', 'run', '--preset', 'tiny', '--out', out, '--server', fake.url, '--token', 't']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('600 synthetic cases');
      expect(r.stdout).toContain('region: found for 600 of 600 cases (600 metadata)');
      expect(r.stdout).toContain("3 judges by 'region' (Beijing, Hunan, Sichuan), 163 training cases each, 60 held-out cases");
      expect(r.stdout).toMatch(/LInCo term +\d\.\d{4} +\[\d\.\d{4}, \d\.\d{4}\] 95% CI/);
      expect(r.stdout).toMatch(/random-split baseline \d\.\d{4} \[.*\] \(null interval\); excess \d\.\d{4} \[\d\.\d{4}, .*\], p = 0\.0\d\d/);
      const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
      const library = resolveLincoConfig({ preset: 'tiny' });
      for (const key of Object.keys(LINCO_FIELDS)) expect(run.config[key], key).toEqual(library[key]);
      const saved = JSON.parse(readFileSync(join(out, 'linco.json'), 'utf8'));
      expect(saved.judges).toEqual([
        { group: 'Beijing', cases: 163 },
        { group: 'Hunan', cases: 163 },
        { group: 'Sichuan', cases: 163 },
      ]);
      expect(saved.baseline.interval).toBe('split+cases');
      expect(saved.baseline.repeats).toHaveLength(3);
      expect(saved.baseline.ci.charge[0]).toBeGreaterThanOrEqual(0);
      expect(saved.baseline.ci.charge[1]).toBeLessThanOrEqual(1);
      expect(saved.excess.ci.term[0]).toBeGreaterThan(0);
      // 8 epochs × (the region panel + 3 random splits).
      expect(losses(out)).toHaveLength(32);
      // One loss series per panel, each over its own epochs (restarted trainings never share a line).
      const lossPoints = fake.requests.filter((q) => q.url.endsWith('/metrics')).flatMap((q) => q.body.points).filter((p: { name: string }) => p.name === 'loss');
      const byKey = new Map<string, number[]>();
      for (const p of lossPoints) byKey.set(p.key, [...(byKey.get(p.key) ?? []), p.step]);
      expect([...byKey.keys()].sort()).toEqual(['panel=groups', 'panel=random-0', 'panel=random-1', 'panel=random-2']);
      for (const steps of byKey.values()) expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const results = fake.requests.filter((q) => q.url === '/api/runs/run-1/results/linco').map((q) => q.body);
      expect(results.map((b) => b.metric)).toEqual(['term', 'charge']);
      for (const b of results) {
        expect(b.overall.lo).toBeLessThanOrEqual(b.overall.value);
        expect(b.overall.hi).toBeGreaterThanOrEqual(b.overall.value);
        expect(b.groups.some((g: { group: string }) => g.group.startsWith('severity='))).toBe(true);
        expect(b.baseline.lo).toBeGreaterThanOrEqual(0);
      }
      expect(fake.requests.some((q) => q.method === 'PUT' && q.url === '/api/runs/run-1/artifacts/linco.json')).toBe(true);
    } finally {
      fake.close();
    }
  });

  it('runs a CAIL2018 file with only the published fields by region and by gender, both read from the text', async () => {
    for (const [groupBy, coverage, judges] of [
      ['region', 'region: found for 44 of 45 cases (42 procuratorate, 2 text); 1 without it', "3 judges by 'region' (Guangdong, Hunan, Zhejiang)"],
      ['gender', 'gender: found for 43 of 45 cases (43 text); 2 without it', "2 judges by 'gender' (female, male)"],
    ] as const) {
      const out = join(tempDir(), groupBy);
      const r = await kiln(['linco', 'run', ...SMALL, '--data', CAIL, '--group-by', groupBy, '--breakdowns', 'severity,period', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`read ${CAIL}: 48 records (cail2018), 45 cases; left out: several defendants: 2 (lines 44, 45); no term of imprisonment: 1 (line 48)`);
      expect(r.stdout).toContain(coverage);
      expect(r.stdout).toContain(judges);
      expect(r.stdout).toContain('by severity:');
      expect(r.stdout).toMatch(/by period:\n {2}20\d\d–20\d\d/);
      const saved = JSON.parse(readFileSync(join(out, 'linco.json'), 'utf8'));
      expect(saved.info.read).toMatchObject({ records: 48, kept: 45 });
    }
  });

  it('refuses bad input with exit 2, naming the file, line, key or attribute', async () => {
    const dir = tempDir();
    const cases: [string[], RegExp][] = [
      [['--data', '/nonexistent/cases.jsonl'], /config key 'data': .*ENOENT|config key 'data'.*no such file/],
      [['--data', join(dir, 'cases.txt')], /config key 'data': .*unknown extension/],
      [['--preset', 'tiny', '--group-by', 'planet'], /no case has the group attribute "planet" \(planet: found for 0 of 600 cases; 600 without it/],
      [['--preset', 'tiny', '--baseline-repeats', '2'], /config key 'baselineRepeats': must be 0 \(no baseline\), 1 .* at least 3, got 2/],
      [['--preset', 'tiny', '--min-per-judge', '500'], /need at least 2 groups with ≥ 500 training cases/],
      [['--preset', 'tiny', '--epochs', 'many'], /flag --epochs must be an integer ≥ 1, got "many"/],
      [['--preset', 'tiny', '--debias', 'reweight', '--baseline-split', 'uniform'], /de-biasing needs 'permute'/],
    ];
    writeFileSync(join(dir, 'bad.jsonl'), `${readFileSync(CAIL, 'utf8').split('\n')[0]}\n{"fact": "被告人某甲盗窃", "meta": {"accusation": ["盗窃"], "term_of_imprisonment": {"imprisonment": "ten"}}}\n`);
    cases.push([['--data', join(dir, 'bad.jsonl')], /bad.jsonl: line 2, field meta.term_of_imprisonment.imprisonment: expected a non-negative number of months, got "ten"/]);
    writeFileSync(join(dir, 'empty.jsonl'), '{"fact": "被告人某甲盗窃", "meta": {}}\n\n');
    cases.push([['--data', join(dir, 'empty.jsonl')], /empty.jsonl has no usable case \(1 records; left out: no charge: 1 \(line 1\)\)/]);
    for (const [args, message] of cases) {
      const r = await kiln(['linco', 'run', '--out', join(dir, 'x'), ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('lists every config key of the field table and both presets in --help', async () => {
    const r = await kiln(['linco', 'run', '--help']);
    expect(r.code).toBe(0);
    for (const key of Object.keys(LINCO_FIELDS)) expect(r.stdout, key).toContain(`  ${key} `);
    expect(r.stdout).toMatch(/default \(default\): 3,000 synthetic cases/);
    expect(r.stdout).toMatch(/tiny: 600 synthetic cases/);
  });
});

describe('kiln linco analyze', () => {
  it("writes the three analyses' report for a CAIL2018 file and uploads it for the dashboard", async () => {
    const fake = await startFakeEvalServer();
    try {
      const out = join(tempDir(), 'analyze');
      const r = await kiln(['linco', 'analyze', ...SMALL, '--data', CAIL, '--attributes', 'region,gender', '--out', out, '--server', fake.url, '--token', 't']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/1\. Inconsistency by group.*\n {2}region +3 judges × \d+ cases; LInCo term \d\.\d{4}, excess -?\d\.\d{4} \[/);
      expect(r.stdout).toMatch(/\n {2}gender +2 judges × \d+ cases/);
      expect(r.stdout).toMatch(/region − gender: term -?\d\.\d{4} \[.*\] → larger: /);
      expect(r.stdout).toMatch(/2\. By period \(2-year periods, region judges\):\n {2}20\d\d–20\d\d +n=\d/);
      expect(r.stdout).toMatch(/3\. By severity of the charge .*\n {2}(light|medium|heavy) +n=\d/);
      expect(r.stdout).toMatch(/Spearman ρ\(severity, excess term\) -?\d\.\d{4} \[.*\] over 10 cases/);
      const report = JSON.parse(readFileSync(join(out, 'linco-report.json'), 'utf8'));
      expect(report).toMatchObject({ kind: 'linco-analysis', data: { records: 48, kept: 45 } });
      expect(report.groups.attributes.map((a: { attribute: string }) => a.attribute)).toEqual(['region', 'gender']);
      const upload = fake.requests.find((q) => q.method === 'PUT' && q.url === '/api/runs/run-1/artifacts/linco-report.json');
      expect(upload?.body).toEqual(report);
    } finally {
      fake.close();
    }
  });

  it('refuses an analysis without a null interval, or with judges de-biased outside the comparison', async () => {
    const r = await kiln(['linco', 'analyze', '--preset', 'tiny', '--baseline-repeats', '1', '--out', join(tempDir(), 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("config key 'baselineRepeats' must be at least 3 for analyze");
    const d = await kiln(['linco', 'analyze', '--preset', 'tiny', '--debias', 'reweight', '--out', join(tempDir(), 'x')]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain("config key 'debias': the analyses judge plain judges; compare de-biasing methods with debiasMethods (--debias-methods reweight)");
  });
});
