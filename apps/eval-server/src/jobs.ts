/**
 * Evaluation jobs: each runs in its own child process (eval-job.ts), one at a time (the
 * machine has few cores), under a memory and a time limit. The process is killed when it
 * passes either; however it ends — a result, an error, a kill, a crash of native code — the
 * job ends as `done` or as `failed` with the reason, and the server keeps serving.
 *
 * Memory: V8's heap is capped with --max-old-space-size, and the child's resident set
 * (which also counts typed arrays and native buffers) is sampled from /proc on Linux every
 * `memoryPollMs`; above the limit the process is killed. Elsewhere only the heap cap applies.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DataFolder } from './data-folder.js';
import type { EvalJobInput, EvalJobMessage } from './eval-job.js';
import type { JobRow, Store } from './store.js';

export interface JobSpec {
  runId: string;
  kind: 'segmentation' | 'pointcloud';
  checkpoint: string;
  dataset: string;
  classes?: string[];
}

export interface JobLimits {
  /** Resident memory of a job's process, in bytes (default 2 GiB). */
  memoryBytes: number;
  /** Wall-clock time of a job, in milliseconds (default 10 minutes). */
  timeMs: number;
  /** Jobs waiting behind the running one before submissions are refused (default 32). */
  maxQueued: number;
  /** How often the resident memory is sampled (default 100 ms). */
  memoryPollMs: number;
}

export const DEFAULT_JOB_LIMITS: JobLimits = { memoryBytes: 2 * 1024 ** 3, timeMs: 10 * 60_000, maxQueued: 32, memoryPollMs: 100 };

export const VIEW_ARTIFACT_SUFFIX = '.points.json';

export class QueueFullError extends Error {
  readonly statusCode = 429;
}

function jobScript(): string {
  // Built as dist/eval-job.js (ESM) and dist/eval-job.cjs (CJS), next to this module.
  const ext = import.meta.url.endsWith('.cjs') ? '.cjs' : '.js';
  return fileURLToPath(new URL(`./eval-job${ext}`, import.meta.url));
}

/** Resident set size of a process in bytes (Linux), or undefined where /proc has none. */
export function residentBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

const mb = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MB`;

export class JobRunner {
  private queue: string[] = [];
  private active: Promise<void> | undefined;
  private child: ChildProcess | undefined;
  private closed = false;
  readonly limits: JobLimits;

  constructor(
    private readonly store: Store,
    private readonly folder: DataFolder,
    limits: Partial<JobLimits> = {},
    private readonly maxViewPoints = 20_000,
  ) {
    this.limits = { ...DEFAULT_JOB_LIMITS, ...limits };
  }

  submit(spec: JobSpec): JobRow {
    if (this.queue.length >= this.limits.maxQueued) {
      throw new QueueFullError(`${this.queue.length} evaluation jobs are already waiting; submit again when some have finished`);
    }
    const job = this.store.createJob(spec.runId, spec.kind, spec);
    this.queue.push(job.id);
    this.pump();
    return job;
  }

  private pump(): void {
    if (this.active || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.active = this.execute(next).finally(() => {
      this.active = undefined;
      this.pump();
    });
  }

  /** Error messages name artifacts, never the server's own paths. */
  private scrub(message: string): string {
    return message.split(this.folder.root).join('<data>');
  }

  private async execute(id: string): Promise<void> {
    const job = this.store.getJob(id)!;
    const spec = job.spec as JobSpec;
    const viewName = `${spec.checkpoint.replace(/\.safetensors$/, '')}${VIEW_ARTIFACT_SUFFIX}`;
    const input: EvalJobInput = {
      kind: spec.kind,
      checkpointPath: this.folder.artifactPath(spec.runId, spec.checkpoint),
      datasetPath: this.folder.artifactPath(spec.runId, spec.dataset),
      ...(spec.classes ? { classes: spec.classes } : {}),
      pointsOutPath: this.folder.artifactPath(spec.runId, viewName),
      maxViewPoints: this.maxViewPoints,
    };
    this.store.updateJob(id, { status: 'running', message: 'starting the evaluation process' });
    const outcome = await this.runChild(id, input);
    if (outcome.kind === 'failed') {
      this.store.updateJob(id, { status: 'failed', message: this.scrub(outcome.reason) });
      return;
    }
    try {
      const { viewPoints, ...score } = outcome.result;
      let pointsArtifact: string | undefined;
      if (viewPoints > 0 && existsSync(input.pointsOutPath)) {
        const bytes = await readFile(input.pointsOutPath);
        this.store.putArtifact({ runId: spec.runId, name: viewName, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
        pointsArtifact = viewName;
      }
      const { row } = this.store.addResult(spec.runId, 'pointcloud', { kind: 'pointcloud', split: spec.dataset, ...score, ...(pointsArtifact ? { pointsArtifact } : {}) });
      this.store.updateJob(id, { status: 'done', progress: 1, message: `mIoU ${(100 * score.miou).toFixed(2)}`, result: { resultId: row.id, ...score, pointsArtifact } });
    } catch (err) {
      this.store.updateJob(id, { status: 'failed', message: this.scrub(`storing the result failed: ${(err as Error).message}`) });
    }
  }

  private runChild(id: string, input: EvalJobInput): Promise<{ kind: 'done'; result: Extract<EvalJobMessage, { type: 'done' }>['result'] } | { kind: 'failed'; reason: string }> {
    const { memoryBytes, timeMs, memoryPollMs } = this.limits;
    return new Promise((resolve) => {
      const heapMb = Math.max(64, Math.floor(memoryBytes / 1024 ** 2));
      const child = fork(jobScript(), [], {
        execArgv: [`--max-old-space-size=${heapMb}`],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
      this.child = child;
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      let result: Extract<EvalJobMessage, { type: 'done' }>['result'] | undefined;
      let error: string | undefined;
      let killedFor: string | undefined;
      let peak = 0;
      const kill = (reason: string): void => {
        if (killedFor) return;
        killedFor = reason;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(() => kill(`stopped after ${Number((timeMs / 1000).toPrecision(3))} s, the job time limit`), timeMs);
      const sampler = setInterval(() => {
        const rss = child.pid === undefined ? undefined : residentBytes(child.pid);
        if (rss === undefined) return;
        peak = Math.max(peak, rss);
        if (rss > memoryBytes) kill(`stopped at ${mb(rss)} of memory, over the job limit of ${mb(memoryBytes)}`);
      }, memoryPollMs);
      child.on('message', (m: EvalJobMessage) => {
        if (m.type === 'progress') this.store.updateJob(id, { progress: m.progress, message: m.message });
        else if (m.type === 'done') result = m.result;
        else if (m.type === 'error') error = m.message;
      });
      child.on('error', (err) => {
        error ??= `the evaluation process could not run: ${err.message}`;
        if (child.pid === undefined) {
          // It never started, so no 'exit' follows.
          clearTimeout(timer);
          clearInterval(sampler);
          this.child = undefined;
          resolve({ kind: 'failed', reason: error });
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        clearInterval(sampler);
        this.child = undefined;
        if (result && code === 0) return resolve({ kind: 'done', result });
        resolve({ kind: 'failed', reason: killedFor ?? error ?? this.crashReason(code, signal, stderr) });
      });
      child.send(input);
    });
  }

  private crashReason(code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
    if (/heap out of memory|Reached heap limit/i.test(stderr)) return `ran out of memory (JavaScript heap limit ${mb(this.limits.memoryBytes)})`;
    if (this.closed) return 'the server stopped while the job ran';
    const last = stderr.trim().split('\n').filter(Boolean).at(-1);
    const how = signal ? `crashed (${signal})` : `exited with code ${code}`;
    return `the evaluation process ${how}${last ? `: ${last.slice(0, 300)}` : ''}`;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of this.queue) this.store.updateJob(id, { status: 'failed', message: 'the server stopped before the job ran' });
    this.queue = [];
    this.child?.kill('SIGKILL');
    await this.active;
  }
}
