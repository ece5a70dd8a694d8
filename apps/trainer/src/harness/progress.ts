/**
 * Progress with rate and ETA: a redrawn bar on a terminal, plain lines (about every 10 %
 * or 5 s) when stdout is a file or pipe, so logs stay readable.
 */
export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  quiet?: boolean;
  /** Defaults to the stream's isTTY. */
  tty?: boolean;
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export class Progress {
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly startTime: number;
  private lastDraw = 0;
  private lastPlainFraction = -1;
  private lastPlainTime = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    /** Steps already done before this process (resume): excluded from the rate. */
    private readonly startAt: number,
    private readonly options: ProgressOptions,
  ) {
    this.tty = options.tty ?? Boolean(options.stream.isTTY);
    this.now = options.now ?? (() => performance.now());
    this.startTime = this.now();
    this.lastPlainTime = this.startTime;
  }

  /** Rate in steps per second since this process started, and the ETA in seconds. */
  stats(done: number): { rate: number; eta: number } {
    const elapsed = (this.now() - this.startTime) / 1000;
    const rate = elapsed > 0 ? (done - this.startAt) / elapsed : 0;
    return { rate, eta: rate > 0 ? (this.total - done) / rate : Number.POSITIVE_INFINITY };
  }

  line(done: number, info = ''): string {
    const { rate, eta } = this.stats(done);
    const pct = this.total > 0 ? Math.floor((100 * done) / this.total) : 100;
    const rateText = rate >= 1 ? `${rate.toFixed(1)} it/s` : rate > 0 ? `${(1 / rate).toFixed(1)} s/it` : '-- it/s';
    const head = `${this.label} ${done}/${this.total} ${String(pct).padStart(3)}%`;
    return `${head} ${rateText} ETA ${formatDuration(eta)}${info ? ` ${info}` : ''}`;
  }

  update(done: number, info = ''): void {
    if (this.options.quiet) return;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw < 80 && done < this.total) return;
      this.lastDraw = t;
      const width = 24;
      const filled = this.total > 0 ? Math.round((width * done) / this.total) : width;
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
      const cols = this.options.stream.columns ?? 120;
      this.options.stream.write(`\r\x1b[2K${`${bar} ${this.line(done, info)}`.slice(0, cols - 1)}`);
      return;
    }
    const fraction = this.total > 0 ? Math.floor((10 * done) / this.total) : 10;
    if (fraction > this.lastPlainFraction || t - this.lastPlainTime > 5000 || done === this.total) {
      this.lastPlainFraction = fraction;
      this.lastPlainTime = t;
      this.options.stream.write(`${this.line(done, info)}\n`);
    }
  }

  /** Ends the bar's line on a terminal. */
  finish(): void {
    if (this.tty && !this.options.quiet) this.options.stream.write('\n');
  }
}
