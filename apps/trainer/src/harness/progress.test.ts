import { describe, expect, it } from 'vitest';
import { Progress, formatDuration } from './progress.js';

function sink() {
  const chunks: string[] = [];
  return { chunks, stream: { write: (s: string) => chunks.push(s) > 0, isTTY: false } as unknown as NodeJS.WritableStream };
}

describe('Progress', () => {
  it('reports rate and ETA from a clock', () => {
    let now = 0;
    const { stream } = sink();
    const p = new Progress('job', 100, 0, { stream, now: () => now });
    now = 2000;
    expect(p.stats(20)).toEqual({ rate: 10, eta: 8 });
    expect(p.line(20, 'loss 1')).toBe('job 20/100  20% 10.0 it/s ETA 8s loss 1');
    expect(formatDuration(3725)).toBe('1h02m');
  });

  it('writes about ten plain lines when not a terminal, a redrawn bar on one', () => {
    let now = 0;
    const plain = sink();
    const p = new Progress('job', 100, 0, { stream: plain.stream, now: () => now });
    for (let i = 1; i <= 100; i++) {
      now += 10;
      p.update(i);
    }
    expect(plain.chunks.length).toBe(11); // at 0 %, 10 %, …, 100 %
    expect(plain.chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    const tty = sink();
    const bar = new Progress('job', 10, 0, { stream: tty.stream, tty: true, now: () => now });
    now += 1000;
    bar.update(5);
    expect(tty.chunks[0]!.startsWith(`\r${String.fromCharCode(27)}[2K[${"#".repeat(12)}${".".repeat(12)}] job 5/10`)).toBe(true);
  });
});
