#!/usr/bin/env node
// Writes the soak table of apps/eval-server/README.md (between its soak markers) from
// results.json, the artifact soak.mjs leaves. Usage: node report.mjs [results.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const BEGIN = '<!-- soak:begin (written by tools/eval-soak/report.mjs from its results.json) -->';
const END = '<!-- soak:end -->';

const r = JSON.parse(readFileSync(process.argv[2] ?? new URL('./results.json', import.meta.url), 'utf8'));
const readme = join(dirname(createRequire(import.meta.url).resolve('@kiln/eval-server/package.json')), 'README.md');
const ms = (s) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms (${s.n} answers)`;
const down = r.kills.map((k) => `${k.atSeconds} s (back after ${(k.downMs / 1000).toFixed(1)} s)`).join(', ');
const refused = Object.entries(r.health.failedWhileDown)
  .map(([why, n]) => `${n} ${why}`)
  .join(', ');
const table = [
  BEGIN,
  `Run of ${r.date.slice(0, 10)}, commit ${r.commit}, Node ${r.node}, ${r.cpus} cores, load average ${r.loadavg.before.join(' / ')} before and ${r.loadavg.after.join(' / ')} after (1 / 5 / 15 min): ${r.config.writers} writers, ${r.config.dashboards} dashboards, ${r.seconds} s, ${r.kills.length} kills. Result: **${r.pass ? 'pass' : 'FAIL'}**.`,
  '',
  '| | |',
  '| --- | --- |',
  `| server killed (SIGKILL) at | ${down} |`,
  `| metric points produced / acknowledged / stored | ${r.writes.produced} / ${r.writes.acknowledged} / ${r.writes.stored} (${r.writes.acknowledgedPerSecond} acknowledged per second) |`,
  `| acknowledged points lost / stored twice / wrong value | ${r.writes.lostAcknowledged} / ${r.writes.duplicates} / ${r.writes.wrongValues} |`,
  `| produced points missing at the end | ${r.writes.missing} (queue drained ${r.writes.drainSecondsAfterStop} s after the writers stopped) |`,
  `| health check latency (every ${r.config.probeEveryMs} ms) | ${ms(r.health.latencyMs)}; refused while the server was down: ${refused || 'none'} |`,
  `| dashboard reads | ${r.reads.requests} requests, ${r.reads.failed} failed while the server was down; ${ms(r.reads.latencyMs)} |`,
  END,
].join('\n');
const text = readFileSync(readme, 'utf8');
const a = text.indexOf(BEGIN);
const b = text.indexOf(END);
if (a < 0 || b < 0) throw new Error(`${readme} has no soak markers`);
writeFileSync(readme, text.slice(0, a) + table + text.slice(b + END.length));
console.log(`wrote the soak table into ${readme}`);
