#!/usr/bin/env node
// Writes the soak and reads tables of apps/eval-server/README.md (between their markers)
// from the artifacts soak.mjs and reads.mjs leave: results.json, reads.json and
// reads-before.json (the same measurement against the server before series reads were
// bounded). Usage: node report.mjs
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const load = (name) => JSON.parse(readFileSync(new URL(`./${name}`, import.meta.url), 'utf8'));
const readme = join(dirname(createRequire(import.meta.url).resolve('@kiln/eval-server/package.json')), 'README.md');
const ms = (s) => (s.n ? `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms (${s.n} answers)` : 'no answer');
let text = readFileSync(readme, 'utf8');

function replaceBetween(name, body) {
  const begin = `<!-- ${name}:begin (written by tools/eval-soak/report.mjs) -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < 0) throw new Error(`${readme} has no ${name} markers`);
  text = `${text.slice(0, a)}${begin}\n${body}\n${text.slice(b)}`;
}

function machine(r) {
  return `${r.date.slice(0, 10)}, commit ${r.commit}, Node ${r.node}, ${r.cpus} cores, load average ${r.loadavg.before.join(' / ')} before and ${r.loadavg.after.join(' / ')} after (1 / 5 / 15 min)`;
}

if (existsSync(new URL('./results.json', import.meta.url))) {
  const r = load('results.json');
  const down = r.kills.map((k) => `${k.atSeconds} s (back after ${(k.downMs / 1000).toFixed(1)} s)`).join(', ');
  const refused = Object.entries(r.health.failedWhileDown)
    .map(([why, n]) => `${n} ${why}`)
    .join(', ');
  const table = [
    `Run of ${machine(r)}: ${r.config.writers} writers, ${r.config.dashboards} dashboards, ${r.seconds} s, ${r.kills.length} kills. Result: **${r.pass ? 'pass' : 'FAIL'}**.`,
    '',
    '| | |',
    '| --- | --- |',
    `| server killed (SIGKILL) at | ${down} |`,
    `| metric points produced / acknowledged / stored | ${r.writes.produced} / ${r.writes.acknowledged} / ${r.writes.stored} (${r.writes.acknowledgedPerSecond} acknowledged per second) |`,
    `| acknowledged points lost / stored twice / wrong value | ${r.writes.lostAcknowledged} / ${r.writes.duplicates} / ${r.writes.wrongValues} |`,
    `| produced points missing at the end | ${r.writes.missing} (queue drained ${r.writes.drainSecondsAfterStop} s after the writers stopped) |`,
    `| health check latency (every ${r.config.probeEveryMs} ms) | ${ms(r.health.latencyMs)}; refused while the server was down: ${refused || 'none'} |`,
    `| server event-loop delay, largest per second | ${ms(r.health.serverLoopDelayMaxPerSecondMs)} |`,
    `| dashboard reads | ${r.reads.requests} requests, ${r.reads.failed} failed while the server was down; ${ms(r.reads.latencyMs)} |`,
  ].join('\n');
  replaceBetween('soak', table);
}

if (existsSync(new URL('./reads.json', import.meta.url))) {
  const now = load('reads.json');
  const before = existsSync(new URL('./reads-before.json', import.meta.url)) ? load('reads-before.json') : undefined;
  const rows = [
    '| server | phase | health check, client-side | server event-loop delay, largest per second | points written per second | heavy reads answered |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [label, r] of [['this one', now], ...(before ? [[before.config.server, before]] : [])]) {
    for (const phase of ['quiet', 'reading']) {
      const p = r[phase];
      rows.push(`| ${label} | ${phase} | ${ms(p.healthMs)} | ${p.serverLoopDelayMaxPerSecondMs?.n ? ms(p.serverLoopDelayMaxPerSecondMs) : 'not reported'} | ${p.pointsWrittenPerSecond} | ${p.heavyReadMs ? p.heavyReadMs.n : '–'} |`);
    }
  }
  replaceBetween(
    'reads',
    [
      `\`node tools/eval-soak/reads.mjs\`: ${now.config.points.toLocaleString('en')} points in one series; ${now.config.seconds} s phases (${now.config.phases}); in the reading phases ${now.config.readers} clients loop over \`maxPoints=4000\` reductions of the whole series and 100,000-point pages. This one: ${machine(now)}.${before ? ` Before: ${machine(before)}.` : ''}`,
      '',
      ...rows,
    ].join('\n'),
  );
}

writeFileSync(readme, text);
