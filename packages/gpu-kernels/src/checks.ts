/**
 * Argument checks shared by every op. Each error names the op, the argument and the
 * shapes involved, so a caller can tell which tensor was wrong without a debugger.
 */
import type { tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function requireTensor(op: string, name: string, t: Tensor | undefined): Tensor {
  if (!t) throw new Error(`${op}: '${name}' is required`);
  return t;
}

export function requireRank(op: string, name: string, t: Tensor, rank: number, layout: string): void {
  if (t.rank !== rank) {
    throw new Error(`${op}: '${name}' must have rank ${rank} (${layout}), got shape ${fmtShape(t.shape)}`);
  }
}

export function requireFloat(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'float32') throw new Error(`${op}: '${name}' must be float32, got ${t.dtype} with shape ${fmtShape(t.shape)}`);
}

/** `t` must have exactly `expected`; `layout` names the dimensions for the message. */
export function requireShape(op: string, name: string, t: Tensor, expected: readonly number[], layout: string): void {
  const ok = t.rank === expected.length && t.shape.every((s, i) => s === expected[i]);
  if (!ok) {
    throw new Error(`${op}: '${name}' must have shape ${fmtShape(expected)} (${layout}), got ${fmtShape(t.shape)}`);
  }
}

export function requirePositiveInt(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${op}: '${name}' must be a positive integer, got ${String(v)}`);
  return v;
}

export function requireFiniteScale(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new Error(`${op}: '${name}' must be a finite number > 0, got ${String(v)}`);
  }
  return v;
}
