/**
 * The fuzz loop, run in a child process by fuzz.test.ts so that a crash (a segfault, an
 * abort, a sanitizer report) fails the test instead of killing the test runner.
 *
 * For every export it takes a consistent call from kernel-cases.ts and breaks one to three
 * arguments: arrays one element too long or short, empty, of the wrong type or not arrays
 * at all; numbers negative, fractional, NaN, infinite or past 2^53; indices out of range;
 * arguments missing. Every call must either return or throw a JavaScript Error. Each
 * array argument sits between guard words in a larger buffer, so a write past either end
 * is caught here even without a sanitizer.
 *
 *   node --import tsx src/fuzz-child.ts <seed> <iterations per export> [names,...]
 *
 * prints one JSON line: calls, throws and returns per export, and any guard violations.
 * With KILN_FUZZ_TRACE=<file> it writes each call to that file before making it, so that
 * after a crash the file names the call that crashed.
 */
import { writeFileSync } from 'node:fs';
import { type KernelCall, KERNEL_CASES } from './kernel-cases.js';
import { requireAddon, TestRandom } from './test-support.js';

const GUARD = 16;
const GUARD_BITS = 0x7fc0dead; // a NaN payload no kernel writes

type Typed = Float32Array | Int32Array | Float64Array | Uint8Array | Uint32Array | Int16Array;

interface Guarded {
  array: Typed;
  words: Uint32Array; // the whole buffer, guards included, as 32-bit words
  before: number; // guard words before the array
}

/** A copy of `src` placed between guard words (arrays of 4-byte elements only). */
function guarded(src: Typed, guards: Guarded[]): Typed {
  if (src.BYTES_PER_ELEMENT !== 4) return src;
  const words = new Uint32Array(src.length + 2 * GUARD).fill(GUARD_BITS);
  const Ctor = src.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => Typed;
  const array = new Ctor(words.buffer, GUARD * 4, src.length);
  array.set(src as never);
  guards.push({ array, words, before: GUARD });
  return array;
}

function guardsIntact(g: Guarded): boolean {
  const end = g.before + g.array.length;
  for (let i = 0; i < g.before; i++) if (g.words[i] !== GUARD_BITS) return false;
  for (let i = end; i < g.words.length; i++) if (g.words[i] !== GUARD_BITS) return false;
  return true;
}

const EDGE_NUMBERS = [
  -1, 0, 1, 2, 3, 15, 16, 17, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e300, -(2 ** 31), -(2 ** 53),
  0.5, -0.5, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
];

function isTyped(v: unknown): v is Typed {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** A broken version of one argument. */
function breakArgument(r: TestRandom, value: unknown): unknown {
  if (isTyped(value)) {
    const len = value.length;
    switch (r.int(0, 7)) {
      case 0:
        return new (value.constructor as new (n: number) => Typed)(len + r.pick([1, 2, 16]));
      case 1:
        return new (value.constructor as new (n: number) => Typed)(Math.max(0, len - r.pick([1, 2, len])));
      case 2:
        return new (value.constructor as new (n: number) => Typed)(0);
      case 3:
        return r.pick([new Float64Array(len), new Uint8Array(len), new Int16Array(len), new Uint32Array(len)]);
      case 4:
        return value instanceof Int32Array ? new Float32Array(len) : new Int32Array(len);
      case 5: {
        // Entries out of range: for index and shape arrays, the interesting case.
        const copy = value.slice() as Typed;
        if (copy.length === 0) return new Int32Array([-1]);
        for (let k = 0; k < r.int(1, 3); k++) {
          const v = r.pick([-1, -2, 2 ** 31 - 1, -(2 ** 31), copy.length, copy.length + 1, 65536, 1 << 20]);
          copy[r.int(0, copy.length)] = v as never;
        }
        return copy;
      }
      default:
        return r.pick([null, undefined, [], [1, 2, 3], 'array', 3, {}]);
    }
  }
  if (typeof value === 'number') {
    if (r.next() < 0.7) return r.pick(EDGE_NUMBERS);
    return value + r.pick([-1, 1, -2, 2]);
  }
  if (typeof value === 'boolean') return r.pick([1, 0, 'true', null, undefined]);
  if (typeof value === 'string') return r.pick(['', 'nope', 'sum ', 'SUM', 'relu6x', 'max', 'add', 7]);
  if (value === null) return r.pick([undefined, 0, new Float32Array(3)]);
  return r.pick([null, 1, 'x']);
}

/** An argument list as text: arrays by type and length, other values as JSON. */
export function describeArgs(args: unknown[]): string {
  const one = (a: unknown): string => {
    if (isTyped(a)) {
      const head = Array.from(a.subarray(0, 6) as ArrayLike<number>).join(', ');
      return `${a.constructor.name}(${a.length})${a instanceof Int32Array ? ` [${head}${a.length > 6 ? ', …' : ''}]` : ''}`;
    }
    if (typeof a === 'number') return Object.is(a, -0) ? '-0' : String(a);
    if (a === undefined) return 'undefined';
    return JSON.stringify(a) ?? String(a);
  };
  return args.map(one).join(', ');
}

function breakCall(r: TestRandom, call: KernelCall): unknown[] {
  const args = [...call.args];
  if (args.length > 0 && r.next() < 0.15) return args.slice(0, r.int(0, args.length)); // missing arguments
  if (r.next() < 0.05) return [...args, 1, new Float32Array(2)]; // extra arguments are ignored
  const count = Math.min(args.length, r.int(1, 4));
  for (let k = 0; k < count; k++) {
    const i = r.int(0, args.length);
    args[i] = breakArgument(r, args[i]);
  }
  return args;
}

interface Tally {
  calls: number;
  returned: number;
  threw: number;
  validReturned: number;
}

function main(): void {
  const [seedArg, iterArg, only] = process.argv.slice(2);
  const seed = Number(seedArg ?? 1);
  const iterations = Number(iterArg ?? 200);
  const addon = requireAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const r = new TestRandom(seed);
  const wanted = only ? new Set(only.split(',')) : undefined;
  const trace = process.env.KILN_FUZZ_TRACE;
  const tallies: Record<string, Tally> = {};
  const violations: string[] = [];
  const nonErrors: string[] = [];
  for (const kase of KERNEL_CASES) {
    if (wanted && !wanted.has(kase.name)) continue;
    const tally: Tally = { calls: 0, returned: 0, threw: 0, validReturned: 0 };
    tallies[kase.name] = tally;
    for (let it = 0; it < iterations; it++) {
      // Thread counts above the core count too, so the split paths run on broken shapes.
      addon.setNumThreads!(r.pick([1, 2, 3, 4, 8]));
      const valid = kase.make(r, 'small');
      const intact = it % 4 === 0; // a quarter of the calls unbroken: they must return
      const guards: Guarded[] = [];
      const args = (intact ? valid.args : breakCall(r, valid)).map((a) => (isTyped(a) ? guarded(a, guards) : a));
      tally.calls++;
      const what = `${kase.name} (seed ${seed}, iteration ${it})`;
      if (trace) writeFileSync(trace, `${what}: ${kase.name}(${describeArgs(args)})\n`);
      try {
        addon[kase.name]!(...args);
        tally.returned++;
        if (intact) tally.validReturned++;
      } catch (err) {
        tally.threw++;
        if (!(err instanceof Error)) nonErrors.push(`${what}: threw ${String(err)}`);
        else if (intact) nonErrors.push(`${what}: a valid call threw ${err.message}`);
      }
      for (const g of guards) if (!guardsIntact(g)) violations.push(`${what}: wrote outside an array of ${g.array.length}`);
    }
  }
  addon.setNumThreads!(2);
  addon.setPoolLimit!(2 ** 30);
  process.stdout.write(`${JSON.stringify({ seed, tallies, violations, nonErrors })}\n`);
}

main();
