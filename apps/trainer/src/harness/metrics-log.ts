/** Metrics as JSON lines, one object per step: `{"step":3,"time":"…","loss":0.12}`. */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@kiln/tensor';

export type MetricRecord = { step: number; time: string } & Record<string, number | string>;

export class MetricsLog {
  constructor(readonly path: string) {}

  /**
   * On resume, drops lines the killed process wrote after its last checkpoint, so the
   * file holds each step once, as an uninterrupted run would.
   */
  async truncateFrom(step: number): Promise<void> {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          return (JSON.parse(line) as MetricRecord).step < step;
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
