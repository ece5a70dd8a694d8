/** `kiln backends`: every backend Kiln knows, whether it can run here, and why not. */
import { backendCandidates, initBackend } from '@kiln/tensor';
import type { CommandSpec } from '../cli/command.js';
import { EXIT } from '../cli/errors.js';

export const backendsCommand: CommandSpec = {
  path: ['backends'],
  summary: 'list the tensor backends, which one would be chosen, and why the others are not available',
  details: 'KILN_BACKEND=<name> forces a backend for every kiln command.',
  schema: {
    json: { type: 'boolean', default: false, doc: 'print JSON instead of a table' },
  },
  async handler(ctx) {
    const rows: { name: string; available: boolean; detail: string }[] = [];
    for (const candidate of backendCandidates) {
      try {
        const r = await candidate.prepare(false);
        rows.push({ name: candidate.name, available: r.ok, detail: r.ok ? (r.detail ?? '') : r.reason });
      } catch (err) {
        rows.push({ name: candidate.name, available: false, detail: (err as Error).message });
      }
    }
    let chosen: string;
    let chosenError: string | undefined;
    try {
      chosen = (await initBackend()).name;
    } catch (err) {
      chosen = '(none)';
      chosenError = (err as Error).message;
    }
    if (ctx.config.json) {
      ctx.stdout.write(`${JSON.stringify({ chosen, error: chosenError, backends: rows }, null, 2)}\n`);
    } else {
      for (const row of rows) {
        const mark = row.name === chosen ? '*' : ' ';
        ctx.stdout.write(`${mark} ${row.name.padEnd(12)} ${row.available ? 'available  ' : 'unavailable'} ${row.detail}\n`);
      }
      ctx.stdout.write(`chosen: ${chosen}${process.env.KILN_BACKEND ? ` (KILN_BACKEND=${process.env.KILN_BACKEND})` : ' (best available; KILN_BACKEND=<name> forces one)'}\n`);
      if (chosenError) ctx.stderr.write(`error: ${chosenError}\n`);
    }
    return chosenError ? EXIT.failed : EXIT.ok;
  },
};
