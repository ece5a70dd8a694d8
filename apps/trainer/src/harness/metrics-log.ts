/** Metrics as JSON lines, one object per step: `{"step":3,"time":"…","loss":0.12}`. */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@kiln/tensor';

export type MetricRecord = { step: number; time: string } & Record<string, number | string>;

export class MetricsLog {
  constructor(readonly path: string) {}

  /**
   * On resume, drops lines the killed process wrote after its last checkpoint (steps are counted from 1, so a checkpoint at
   * step S keeps lines 1..S), so the
   * file holds each step once, as an uninterrupted run would.
   */
  async keepThrough(step: number): Promise<void> {
    await this.keepWhere((record) => record.step <= step && record.phase !== 'final');
  }

  /** Rewrites the file with the lines `keep` accepts (a half-written last line never stays). */
  async keepWhere(keep: (record: MetricRecord) => boolean): Promise<void> {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          return keep(JSON.parse(line) as MetricRecord);
        } catch {
          return false; // a half-written last line from a kill
        }
      });
    await writeFileAtomic(this.path, kept.length ? `${kept.join('\n')}\n` : '');
  }

  append(record: MetricRecord): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  static read(path: string): MetricRecord[] {
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as MetricRecord);
  }
}
