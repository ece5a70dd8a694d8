/**
 * Evaluation jobs: each runs in its own worker thread, one at a time (the machine has
 * few cores), and writes its progress and result to the store as it goes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { DataFolder } from './data-folder.js';
import type { EvalWorkerInput, EvalWorkerMessage } from './eval-worker.js';
import type { JobRow, Store } from './store.js';

export interface JobSpec {
  runId: string;
  kind: 'segmentation' | 'pointcloud';
  checkpoint: string;
  dataset: string;
  classes?: string[];
}

export const VIEW_ARTIFACT_SUFFIX = '.points.json';

function workerUrl(): URL {
  // Built as dist/eval-worker.js (ESM) and dist/eval-worker.cjs (CJS), next to this module.
  const ext = import.meta.url.endsWith('.cjs') ? '.cjs' : '.js';
  return new URL(`./eval-worker${ext}`, import.meta.url);
}

export class JobRunner {
  private queue: string[] = [];
  private active: Promise<void> | undefined;
  private worker: Worker | undefined;

  constructor(
    private readonly store: Store,
    private readonly folder: DataFolder,
    private readonly maxViewPoints = 20_000,
  ) {}

  submit(spec: JobSpec): JobRow {
    const job = this.store.createJob(spec.runId, spec.kind, spec);
    this.queue.push(job.id);
    this.pump();
    return job;
  }

  private pump(): void {
    if (this.active) return;
    const next = this.queue.shift();
    if (!next) return;
    this.active = this.execute(next).finally(() => {
      this.active = undefined;
      this.pump();
    });
  }

  private execute(id: string): Promise<void> {
    const job = this.store.getJob(id)!;
    const spec = job.spec as JobSpec;
    const viewName = `${spec.checkpoint.replace(/\.safetensors$/, '')}${VIEW_ARTIFACT_SUFFIX}`;
    const input: EvalWorkerInput = {
      kind: spec.kind,
      checkpointPath: this.folder.artifactPath(spec.runId, spec.checkpoint),
      datasetPath: this.folder.artifactPath(spec.runId, spec.dataset),
      classes: spec.classes,
      pointsOutPath: this.folder.artifactPath(spec.runId, viewName),
      maxViewPoints: this.maxViewPoints,
    };
    this.store.updateJob(id, { status: 'running', message: 'starting worker' });
    return new Promise<void>((resolve) => {
      const worker = new Worker(workerUrl(), { workerData: input });
      this.worker = worker;
      let finished = false;
      worker.on('message', (m: EvalWorkerMessage) => {
        if (m.type === 'progress') {
          this.store.updateJob(id, { progress: m.progress, message: m.message });
          return;
        }
        finished = true;
        const { viewPoints, ...score } = m.result;
        let pointsArtifact: string | undefined;
        const viewPath = input.pointsOutPath;
        if (viewPoints > 0 && existsSync(viewPath)) {
          const bytes = readFileSync(viewPath);
          this.store.putArtifact({ runId: spec.runId, name: viewName, size: statSync(viewPath).size, sha256: createHash('sha256').update(bytes).digest('hex') });
          pointsArtifact = viewName;
        }
        const result = this.store.addResult(spec.runId, 'pointcloud', { kind: 'pointcloud', split: spec.dataset, ...score, ...(pointsArtifact ? { pointsArtifact } : {}) });
        this.store.updateJob(id, { status: 'done', progress: 1, message: `mIoU ${(100 * score.miou).toFixed(2)}`, result: { resultId: result.id, ...score, pointsArtifact } });
      });
      worker.on('error', (err) => {
        finished = true;
        this.store.updateJob(id, { status: 'failed', message: err.message });
      });
      worker.on('exit', (code) => {
        if (!finished) this.store.updateJob(id, { status: 'failed', message: `worker exited with code ${code}` });
        this.worker = undefined;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.queue = [];
    await this.worker?.terminate();
    await this.active;
  }
}
