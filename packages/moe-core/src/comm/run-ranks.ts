import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker, parentPort, workerData } from 'node:worker_threads';
import { initBackend, tf } from '@kiln/tensor';
import type { Communicator } from './communicator.js';
import { PortCommunicator } from './port-communicator.js';

/** What a rank program receives: its place in the group and the group's communicator. */
export interface RankContext {
  rank: number;
  size: number;
  comm: Communicator;
}

/** A function run once on every rank (each rank a worker thread with its own tfjs engine). */
export type RankProgram<A, R> = (ctx: RankContext, args: A) => R | Promise<R>;

export interface RunRanksOptions {
  /** Module that exports the program (a file URL); default: @kiln/moe-core itself. */
  module?: string;
  /** tfjs backend each rank initialises; default: the caller's current backend. */
  backend?: string;
  /** Per-collective timeout in ms (see PortCommunicatorOptions); default 120000. */
  timeoutMs?: number;
}

interface RankWorkerData {
  rank: number;
  size: number;
  ports: (MessagePort | null)[];
  module: string;
  exportName: string;
  args: unknown;
  backend: string;
  timeoutMs: number;
}

/** URL of this module, under ESM (import.meta.url) and under the CJS build (__filename). */
function thisModuleUrl(): string {
  if (typeof __filename === 'string' && __filename.length > 0) return pathToFileURL(__filename).href;
  return import.meta.url;
}

/**
 * Node's worker threads cannot load TypeScript, so when this package runs from source (tests,
 * benches under vitest) each .ts module a worker needs is bundled once per process with
 * esbuild (a dev dependency) into node_modules/.cache next to the package, where the bare
 * imports (@kiln/tensor) still resolve. From dist, the bundle itself is the entry.
 */
const bundled = new Map<string, Promise<string>>();
function workerModule(url: string): Promise<string> {
  if (!url.endsWith('.ts')) return Promise.resolve(url);
  let done = bundled.get(url);
  if (!done) {
    done = (async () => {
      const source = fileURLToPath(url);
      // a non-literal specifier keeps tsup from bundling this dev-only dependency into dist
      const esbuild = 'esbuild';
      const { build } = (await import(esbuild)) as typeof import('esbuild');
      const packageRoot = fileURLToPath(new URL('../../', thisModuleUrl()));
      const outfile = join(packageRoot, 'node_modules', '.cache', 'kiln-moe-workers', `${process.pid}-${bundled.size}-${basename(source, '.ts')}.mjs`);
      await build({ entryPoints: [source], outfile, bundle: true, format: 'esm', platform: 'node', packages: 'external', logLevel: 'error' });
      return pathToFileURL(outfile).href;
    })();
    bundled.set(url, done);
  }
  return done;
}

// Worker code: a tiny CommonJS script that imports the entry and hands over to it.
const BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.entry).then((m) => m.rankWorkerMain()).catch((e) => {
  parentPort.postMessage({ ok: false, error: String((e && e.stack) || e) });
});
`;

/**
 * Runs `exportName` (a RankProgram exported by `options.module`, default this package) on
 * `size` ranks, each a worker thread joined to every other by a MessageChannel, and returns
 * each rank's result in rank order. A rank that throws rejects the whole run with its error.
 */
export async function runRanks<A, R>(size: number, exportName: string, args: A, options: RunRanksOptions = {}): Promise<R[]> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`runRanks: size must be a positive integer, got ${size}`);
  const mesh: (MessagePort | null)[][] = Array.from({ length: size }, () => new Array<MessagePort | null>(size).fill(null));
  for (let i = 0; i < size; i++) {
    for (let j = i + 1; j < size; j++) {
      const { port1, port2 } = new MessageChannel();
      mesh[i]![j] = port1;
      mesh[j]![i] = port2;
    }
  }
  const here = thisModuleUrl();
  const entry = await workerModule(here.endsWith('.ts') ? new URL('../index.ts', here).href : here);
  const module = options.module ? await workerModule(options.module) : entry;
  const workers: Worker[] = [];
  try {
    const results = await Promise.all(
      mesh.map(
        (ports, rank) =>
          new Promise<R>((resolve, reject) => {
            const data: RankWorkerData & { entry: string } = {
              entry,
              rank,
              size,
              ports,
              module,
              exportName,
              args,
              backend: options.backend ?? tf.getBackend(),
              timeoutMs: options.timeoutMs ?? 120_000,
            };
            const transfer = ports.filter((p): p is MessagePort => p !== null);
            const worker = new Worker(BOOTSTRAP, { eval: true, workerData: data, transferList: transfer });
            workers.push(worker);
            worker.once('message', (msg: { ok: boolean; result?: R; error?: string }) => {
              if (msg.ok) resolve(msg.result as R);
              else reject(new Error(`rank ${rank} of ${size} failed in ${exportName}: ${msg.error}`));
            });
            worker.once('error', (e) => reject(new Error(`rank ${rank} of ${size} crashed: ${e.stack ?? e}`)));
            worker.once('exit', (code) => reject(new Error(`rank ${rank} of ${size} exited with code ${code} before answering`)));
          }),
      ),
    );
    return results;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Entry point inside a rank's worker thread (called by the bootstrap script). */
export async function rankWorkerMain(): Promise<void> {
  const data = workerData as RankWorkerData;
  const comm = new PortCommunicator(data.rank, data.ports, { timeoutMs: data.timeoutMs });
  try {
    await initBackend({ env: { KILN_BACKEND: data.backend } });
    const mod = (await import(data.module)) as Record<string, unknown>;
    const program = mod[data.exportName];
    if (typeof program !== 'function') throw new Error(`${data.module} does not export a function ${data.exportName}`);
    const result = await (program as RankProgram<unknown, unknown>)({ rank: data.rank, size: data.size, comm }, data.args);
    parentPort!.postMessage({ ok: true, result });
  } catch (e) {
    parentPort!.postMessage({ ok: false, error: String((e as Error)?.stack ?? e) });
  } finally {
    comm.close();
  }
}
