/**
 * The record of a run whose loop lives in a library (LInCo, the MoE demo, point-cloud
 * pre-training): a run directory with run.json and metrics.jsonl, a progress bar, and the
 * eval-server sink — the same files and server calls as `runTraining`, for code the
 * harness does not drive step by step.
 */
import { join } from 'node:path';
import { type Config, writeFileAtomic } from '@kiln/tensor';
import { type MetricRecord, MetricsLog } from './metrics-log.js';
import { Progress } from './progress.js';
import { openSink, prepareRunDirectory, runDirectory } from './run.js';
import type { ServerSink } from './server-sink.js';

export interface RecorderOptions {
  command: string;
  kind: string;
  config: Config;
  quiet: boolean;
  token: string | undefined;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resuming: the eval-server run to append to instead of creating one. */
  serverRunId?: string | undefined;
}

export class RunRecorder {
  readonly dir: string;
  readonly metrics: MetricsLog;
  private sink: ServerSink | undefined;

  private constructor(private readonly options: RecorderOptions) {
    this.dir = runDirectory(options.command, options.config);
    this.metrics = new MetricsLog(join(this.dir, 'metrics.jsonl'));
  }

  /**
   * `keep` decides which lines of an existing metrics.jsonl stay (resuming a pipeline keeps
   * the lines of its completed phases); by default the file starts empty.
   */
  static async open(options: RecorderOptions, keep?: (record: MetricRecord) => boolean): Promise<RunRecorder> {
    const r = new RunRecorder(options);
    prepareRunDirectory(r.dir);
    await r.metrics.keepWhere(keep ?? (() => false));
    await r.writeJson('run.json', { command: options.command, kind: options.kind, config: options.config, startedAt: new Date().toISOString() });
    r.sink = await openSink(options, `${options.command} seed ${options.config.seed ?? 0}`, options.kind, options.serverRunId);
    return r;
  }

  get command(): string {
    return this.options.command;
  }

  /** The run's id on the eval server (undefined without --server, or when it was unreachable). */
  get serverRunId(): string | undefined {
    return this.sink?.id;
  }

  /** A progress bar; `start` steps were done before this process (resume). */
  progress(label: string, total: number, start = 0): Progress {
    return new Progress(label, total, start, { stream: this.options.stdout, quiet: this.options.quiet });
  }

  /**
   * One metrics line, and its numeric values to the server under `prefix/name`. A `key`
   * makes them one series of several of the same metric (`panel=groups`): each key is its
   * own line in the dashboard, with steps of its own.
   */
  log(step: number, values: Record<string, number | string>, prefix = '', key?: string): void {
    const time = Date.now();
    this.metrics.append({ step, time: new Date(time).toISOString(), ...(key === undefined ? {} : { key }), ...values });
    const points = Object.entries(values)
      .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
      .map(([name, value]) => ({ step, name: prefix ? `${prefix}/${name}` : name, value, time, ...(key === undefined ? {} : { key }) }));
    this.sink?.push(points);
  }

  async result(kind: 'pointcloud' | 'moe' | 'linco', payload: Record<string, unknown>): Promise<void> {
    await this.sink?.result(kind, payload);
  }

  async artifact(name: string, bytes: Uint8Array): Promise<void> {
    await this.sink?.artifact(name, bytes);
  }

  async writeJson(name: string, value: unknown): Promise<string> {
    const path = join(this.dir, name);
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
    return path;
  }

  async close(): Promise<void> {
    await this.sink?.close();
  }
}
