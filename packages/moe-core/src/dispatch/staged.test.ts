import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CommStep, type LocalStep, StagedGraph, splitRows } from './staged.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('StagedGraph', () => {
  it('back-propagates across an async communication step and overlaps independent local steps with it', async () => {
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // a "communication" that doubles its input once released (adjoint: doubles the cotangent)
    const comm: CommStep = {
      kind: 'comm',
      name: 'comm',
      inputs: ['a'],
      outputs: ['b'],
      forward: async ([a]) => {
        events.push('comm started');
        await gate;
        events.push('comm done');
        return [tf.mul(a!, 2)];
      },
      backward: async ([d]) => [tf.mul(d!, 2)],
    };
    const first: LocalStep = { kind: 'local', name: 'first', inputs: ['x', 'w'], outputs: ['a'], run: ([x, w]) => [tf.tanh(tf.matMul(x!, w!))] };
    const side: LocalStep = {
      kind: 'local',
      name: 'side',
      inputs: ['x'],
      outputs: ['s'],
      run: ([x]) => {
        events.push('side ran');
        release();
        return [tf.sin(x!)];
      },
    };
    const last: LocalStep = { kind: 'local', name: 'last', inputs: ['b', 's'], outputs: ['y'], run: ([b, s]) => [tf.add(tf.square(b!), s!)] };
    const rng = createRng(2);
    const x = rng.normal([3, 4]);
    const w = rng.normal([4, 4]);
    const dy = rng.normal([3, 4]);
    const graph = new StagedGraph([first, comm, side, last]);
    const [y] = await graph.forward({ x, w }, ['y']);
    expect(events).toEqual(['comm started', 'side ran', 'comm done']);
    const grads = await graph.backward({ y: dy }, ['x', 'w']);
    const direct = (a: tf.Tensor, b: tf.Tensor) => tf.add(tf.square(tf.mul(tf.tanh(tf.matMul(a, b)), 2)), tf.sin(a));
    expect(Array.from(y!.dataSync())).toEqual(Array.from(direct(x, w).dataSync()));
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(direct(a, b), dy)))([x, w]);
    const close = (a: tf.Tensor, b: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);
    close(grads.x!, gx!);
    close(grads.w!, gw!);
    expect(Object.keys(graph.timings).sort()).toEqual(['comm', 'first', 'last', 'side']);
  });

  it('runs a step marked `overlaps` after the adjoint of that communication is started, in backward too', async () => {
    const events: string[] = [];
    const comm: CommStep = {
      kind: 'comm',
      name: 'comm',
      inputs: ['a'],
      outputs: ['b'],
      forward: async ([a]) => [tf.mul(a!, 2)],
      backward: async ([d]) => {
        events.push('adjoint started');
        await new Promise((r) => setTimeout(r, 20));
        events.push('adjoint done');
        return [tf.mul(d!, 2)];
      },
    };
    const side: LocalStep = {
      kind: 'local',
      name: 'side',
      inputs: ['x'],
      outputs: ['s'],
      overlaps: 'comm',
      run: ([x]) => {
        events.push('side');
        return [tf.sin(x!)];
      },
    };
    const first: LocalStep = { kind: 'local', name: 'first', inputs: ['x'], outputs: ['a'], run: ([x]) => [tf.tanh(x!)] };
    const last: LocalStep = { kind: 'local', name: 'last', inputs: ['b', 's'], outputs: ['y'], run: ([b, s]) => [tf.mul(b!, s!)] };
    const x = createRng(3).normal([2, 3]);
    const graph = new StagedGraph([first, comm, side, last]);
    await graph.forward({ x }, ['y']);
    events.length = 0;
    const { x: gx } = await graph.backward({ y: tf.onesLike(x) }, ['x']);
    expect(events).toEqual(['adjoint started', 'side', 'adjoint done']);
    const [ref] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.mul(tf.tanh(a), 2), tf.sin(a))))([x]);
    expect(tf.max(tf.abs(tf.sub(gx!, ref!))).dataSync()[0]).toBeLessThan(1e-6);
    expect(() => new StagedGraph([first, side, comm])).toThrow(/side overlaps 'comm', which is not a communication step before it/);
  });

  it('rejects a value produced twice', () => {
    const s: LocalStep = { kind: 'local', name: 'a', inputs: [], outputs: ['v'], run: () => [tf.scalar(1)] };
    expect(() => new StagedGraph([s, { ...s, name: 'b' }])).toThrow(/'v' is produced twice \(by b\)/);
  });

  it('splits a tensor with no rows (a rank whose experts received no tokens) into empty blocks', async () => {
    const parts = await splitRows(tf.zeros([0, 3]), [0, 0]);
    expect(parts.map((p) => p.length)).toEqual([0, 0]);
    expect((await splitRows(tf.tensor2d([1, 2, 3, 4], [2, 2]), [0, 1, 1])).map((p) => Array.from(p))).toEqual([[], [1, 2], [3, 4]]);
  });
});
