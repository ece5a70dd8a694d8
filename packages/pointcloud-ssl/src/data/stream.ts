/**
 * Streaming training data: every step's micro-batches are read from disk on demand and run
 * through the pipeline in worker threads, ahead of the training step that needs them, so a
 * data set larger than memory trains and the loading overlaps the step.
 *
 * What a micro-batch holds is a pure function of (seed, step, micro-batch): its scenes are
 * drawn without replacement from its shard (scene i belongs to shard i mod M of the M
 * micro-batches of a step) and every transform draws from an Rng seeded by those three
 * numbers. So prefetching cannot change the data, a resumed run sees what the uninterrupted
 * one saw, and M micro-batches split over ranks (data parallel) or accumulated in one process
 * are the same micro-batches.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRng } from '@kiln/tensor';
import { type SceneRef, loadScene } from './datasets.js';
import { PointCloudFormatError } from './formats/text.js';
import type { TrainingPipeline } from './pipeline.js';
import { type PointCloudBatch, concatScenes } from './point-cloud.js';
import { Compose, sampleFromScene, sceneFromSample } from './transforms.js';

export interface StreamPlan {
  /** The scenes to draw from (ignored when the stream is given scenes in memory). */
  scenes: SceneRef[];
  pipeline: TrainingPipeline;
  /** Views per micro-batch: 2 for pre-training (same points, different augmentations), 1 for fine-tuning. */
  views: number;
  /** Scenes per micro-batch. */
  batchScenes: number;
  /** Micro-batches per step (over all ranks); each draws from its own shard of the scenes. */
  microBatches: number;
  seed: number;
}

/** A 32-bit seed from a tuple of integers (each mixed in with a SplitMix32 round). */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    h = (h ^ (p >>> 0)) >>> 0;
    h = (h + 0x9e3779b9) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/** Scene indices of shard `micro` of `microBatches`: i ≡ micro (mod microBatches). */
export function shardScenes(sceneCount: number, microBatches: number, micro: number): number[] {
  const out: number[] = [];
  for (let i = micro; i < sceneCount; i += microBatches) out.push(i);
  return out;
}

/** Throws naming the numbers when a shard cannot fill a micro-batch. */
export function checkPlan(sceneCount: number, plan: Pick<StreamPlan, 'microBatches' | 'batchScenes'>): void {
  const smallest = Math.floor(sceneCount / plan.microBatches);
  if (smallest < plan.batchScenes) {
    throw new Error(
      `${sceneCount} training scene(s) give each of the ${plan.microBatches} micro-batch(es) of a step a shard of ${smallest} (scene i belongs to micro-batch i mod ${plan.microBatches}), fewer than the ${plan.batchScenes} scenes a micro-batch draws: lower batchScenes, the accumulation or the number of ranks`,
    );
  }
}

/** The views of micro-batch `micro` of step `step` (one multi-scene batch per view). */
export async function makeMicroBatch(plan: StreamPlan, step: number, micro: number, load: (i: number) => Promise<PointCloudBatch>, sceneCount: number): Promise<PointCloudBatch[]> {
  const shard = shardScenes(sceneCount, plan.microBatches, micro);
  const rng = createRng(mixSeed(plan.seed, step, micro));
  const pick = rng.permutation(shard.length).slice(0, plan.batchScenes);
  const sampleT = new Compose(plan.pipeline.sample);
  const viewT = new Compose(plan.pipeline.view);
  const views: PointCloudBatch[][] = Array.from({ length: plan.views }, () => []);
  for (const k of pick) {
    const i = shard[k]!;
    const base = sampleT.apply(sampleFromScene(await load(i)), rng);
    for (let v = 0; v < plan.views; v++) views[v]!.push(sceneFromSample(viewT.apply(base, rng), `training scene ${i}`));
  }
  return views.map((scenes) => concatScenes(scenes));
}

export interface SceneStreamOptions {
  /** Worker threads that load and transform (0: on the calling thread, no overlap). */
  workers?: number;
  /** Micro-batches requested ahead of the one being consumed (workers only). */
  prefetch?: number;
  /** The micro-batches this process consumes each step, in order. */
  micros: number[];
  /** Steps end before this one (nothing is prefetched past it). */
  endStep: number;
  /** Scenes already in memory (then `plan.scenes` is ignored and loading is inline). */
  memory?: readonly PointCloudBatch[];
}

interface WorkerReply {
  id: number;
  ok: boolean;
  views?: PointCloudBatch[];
  error?: { name: string; message: string; file?: string; detail?: string };
}

/** The training data of one process: `get(step, micro)` in consumption order. */
export class SceneStream {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<string, Promise<PointCloudBatch[]>>();
  private readonly waiting = new Map<number, { resolve: (v: PointCloudBatch[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private ready: Promise<void> | undefined;
  private closed = false;
  private readonly sceneCount: number;

  constructor(
    readonly plan: StreamPlan,
    private readonly options: SceneStreamOptions,
  ) {
    this.sceneCount = options.memory ? options.memory.length : plan.scenes.length;
    checkPlan(this.sceneCount, plan);
    const workers = options.memory ? 0 : (options.workers ?? 1);
    if (workers > 0) this.ready = this.start(workers);
  }

  private async start(count: number): Promise<void> {
    const url = await workerUrl();
    for (let w = 0; w < count; w++) {
      const worker = new Worker(new URL(url), { workerData: { kind: 'kiln-scene-stream', plan: this.plan } });
      worker.on('message', (reply: WorkerReply) => {
        const waiter = this.waiting.get(reply.id);
        if (!waiter) return;
        this.waiting.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.views!);
        else waiter.reject(rebuildError(reply.error!));
      });
      worker.on('error', (e) => this.failAll(new Error(`scene loader thread crashed: ${e.stack ?? e}`)));
      worker.on('exit', (code) => {
        if (!this.closed) this.failAll(new Error(`scene loader thread exited with code ${code}`));
      });
      this.workers.push(worker);
    }
  }

  private failAll(error: Error): void {
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
  }

  private request(step: number, micro: number): Promise<PointCloudBatch[]> {
    const key = `${step}:${micro}`;
    let p = this.pending.get(key);
    if (p) return p;
    if (this.workers.length === 0 && !this.ready) {
      const memory = this.options.memory;
      const load = memory ? async (i: number) => memory[i]! : (i: number) => loadScene(this.plan.scenes[i]!);
      p = makeMicroBatch(this.plan, step, micro, load, this.sceneCount);
    } else {
      p = this.ready!.then(
        () =>
          new Promise<PointCloudBatch[]>((resolve, reject) => {
            if (this.closed) return reject(new Error('scene stream closed'));
            const id = this.nextId++;
            this.waiting.set(id, { resolve, reject });
            this.workers[id % this.workers.length]!.postMessage({ id, step, micro });
          }),
      );
    }
    // A prefetched request that fails is reported when it is consumed, not as unhandled.
    p.catch(() => undefined);
    this.pending.set(key, p);
    return p;
  }

  /** The views of micro-batch `micro` of `step`; also requests the next ones ahead. */
  async get(step: number, micro: number): Promise<PointCloudBatch[]> {
    if (this.closed) throw new Error('scene stream closed');
    const key = `${step}:${micro}`;
    const result = this.request(step, micro);
    if (this.workers.length > 0 || this.ready) {
      const { micros, endStep } = this.options;
      let s = step;
      let j = micros.indexOf(micro);
      for (let ahead = 0; ahead < (this.options.prefetch ?? 2); ahead++) {
        j++;
        if (j >= micros.length) {
          j = 0;
          s++;
        }
        if (s >= endStep) break;
        this.request(s, micros[j]!);
      }
    }
    try {
      return await result;
    } finally {
      this.pending.delete(key);
    }
  }

  /** Micro-batches requested (prefetched or being read) and not yet consumed. */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('scene stream closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

function rebuildError(e: NonNullable<WorkerReply['error']>): Error {
  if (e.name === 'PointCloudFormatError' && e.file !== undefined) return new PointCloudFormatError(e.file, e.detail ?? e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** URL of this module, under ESM (import.meta.url) and under the CJS build (__filename). */
function thisModuleUrl(): string {
  if (typeof __filename === 'string' && __filename.length > 0) return pathToFileURL(__filename).href;
  return import.meta.url;
}

let bundled: Promise<string> | undefined;

/**
 * The worker's entry: dist/stream-worker.js (or .cjs) next to the built package. Running from
 * source (tests), Node's worker threads cannot load TypeScript, so the entry is bundled once
 * per process with esbuild (a dev dependency) into node_modules/.cache, where the package's
 * bare imports still resolve.
 */
function workerUrl(): Promise<string> {
  const here = thisModuleUrl();
  if (!here.endsWith('.ts')) return Promise.resolve(new URL(`./stream-worker${here.endsWith('.cjs') ? '.cjs' : '.js'}`, here).href);
  bundled ??= (async () => {
    const source = fileURLToPath(new URL('./stream-worker.ts', here));
    // a non-literal specifier keeps tsup from bundling this dev-only dependency into dist
    const esbuild = 'esbuild';
    const { build } = (await import(esbuild)) as typeof import('esbuild');
    const cache = join(fileURLToPath(new URL('../../', here)), 'node_modules', '.cache', 'kiln-pointcloud-workers');
    if (!existsSync(cache)) mkdirSync(cache, { recursive: true });
    const outfile = join(cache, `${process.pid}-${basename(source, '.ts')}.mjs`);
    await build({ entryPoints: [source], outfile, bundle: true, format: 'esm', platform: 'node', packages: 'external', logLevel: 'error' });
    return pathToFileURL(outfile).href;
  })();
  return bundled;
}
