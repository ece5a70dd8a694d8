import type { MessagePort } from 'node:worker_threads';
import { type Communicator, agreeOnPartition, checkPartition, reduceArrays } from './communicator.js';

interface Envelope {
  /** Which collective and its sequence number: every rank must agree, or the group is out of step. */
  tag: string;
  data: Float32Array;
}

export interface PortCommunicatorOptions {
  /**
   * Milliseconds a collective waits for a peer before failing with an error that names the
   * collective and the ranks that never arrived (instead of hanging). 0 waits forever.
   */
  timeoutMs?: number;
}

/**
 * A Communicator over a full mesh of MessagePorts (one per peer), for ranks running as
 * worker threads. Payloads are copied once into a fresh buffer and that buffer is
 * transferred (moved, not cloned) to the peer. Each port delivers in order, and every rank
 * issues collectives in the same order, so the k-th message from a peer belongs to the
 * k-th collective; the tag checks it.
 */
export class PortCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  private readonly ports: (MessagePort | null)[];
  private readonly inbox: Envelope[][];
  /** Receivers waiting per peer, oldest first (several collectives may be in flight at once). */
  private readonly waiting: ((e: Envelope) => void)[][];
  private seq = 0;
  private readonly timeoutMs: number;

  constructor(rank: number, ports: (MessagePort | null)[], options: PortCommunicatorOptions = {}) {
    this.rank = rank;
    this.size = ports.length;
    if (rank < 0 || rank >= this.size) throw new Error(`PortCommunicator: rank ${rank} outside a group of ${this.size}`);
    this.ports = ports;
    this.everyone = ports.map((_, i) => i);
    this.timeoutMs = options.timeoutMs ?? 0;
    this.inbox = ports.map(() => []);
    this.waiting = ports.map(() => []);
    ports.forEach((port, peer) => {
      if (peer === rank) return;
      if (!port) throw new Error(`PortCommunicator: rank ${rank} has no port to rank ${peer}`);
      port.on('message', (e: Envelope) => {
        const resolve = this.waiting[peer]!.shift();
        if (resolve) resolve(e);
        else this.inbox[peer]!.push(e);
      });
    });
  }

  private send(peer: number, tag: string, data: Float32Array): void {
    const copy = data.slice();
    this.ports[peer]!.postMessage({ tag, data: copy } satisfies Envelope, [copy.buffer as ArrayBuffer]);
  }

  private receive(peer: number, tag: string): Promise<Float32Array> {
    const check = (e: Envelope): Float32Array => {
      if (e.tag !== tag) {
        throw new Error(`collective mismatch on rank ${this.rank}: expected ${tag} from rank ${peer}, got ${e.tag}`);
      }
      return e.data;
    };
    const queued = this.inbox[peer]!.shift();
    if (queued) return Promise.resolve(check(queued));
    return new Promise<Float32Array>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = (e: Envelope) => {
        if (timer) clearTimeout(timer);
        try {
          resolve(check(e));
        } catch (err) {
          reject(err);
        }
      };
      if (this.timeoutMs > 0) {
        timer = setTimeout(() => {
          const list = this.waiting[peer]!;
          const i = list.indexOf(waiter);
          if (i >= 0) list.splice(i, 1);
          reject(new Error(`${tag}: rank ${this.rank} waited ${this.timeoutMs} ms for rank ${peer}, which never arrived`));
        }, this.timeoutMs);
      }
      this.waiting[peer]!.push(waiter);
    });
  }

  /** Sends `chunks[i]` to `peers[i]` and gathers one message from each (this rank keeps its own chunk). */
  private async exchangeWith(peers: readonly number[], tag: string, chunks: Float32Array[]): Promise<Float32Array[]> {
    peers.forEach((peer, i) => {
      if (peer !== this.rank) this.send(peer, tag, chunks[i]!);
    });
    return Promise.all(chunks.map((chunk, i) => (peers[i] === this.rank ? Promise.resolve(chunk.slice()) : this.receive(peers[i]!, tag))));
  }

  private exchange(op: string, chunks: Float32Array[]): Promise<Float32Array[]> {
    if (chunks.length !== this.size) {
      throw new Error(`${op}: expected ${this.size} chunks (one per rank), got ${chunks.length}`);
    }
    return this.exchangeWith(this.everyone, `${op}#${this.seq++}`, chunks);
  }

  private readonly everyone: number[];
  private readonly groups = new Map<string, Communicator>();

  allGather(data: Float32Array): Promise<Float32Array[]> {
    return this.exchange('allGather', new Array<Float32Array>(this.size).fill(data));
  }

  allToAllV(chunks: Float32Array[]): Promise<Float32Array[]> {
    return this.exchange('allToAllV', chunks);
  }

  async allReduce(data: Float32Array, op: 'sum' | 'max' = 'sum'): Promise<Float32Array> {
    const parts = await this.exchange(`allReduce.${op}`, new Array<Float32Array>(this.size).fill(data));
    return reduceArrays(parts, op);
  }

  async barrier(): Promise<void> {
    await this.exchange('barrier', new Array<Float32Array>(this.size).fill(new Float32Array(0)));
  }

  /**
   * Splits the group (see `Communicator.subgroups`). Every rank checks that all passed the
   * same partition, then builds its group over the same ports: no new channels are needed.
   */
  async subgroups(groups: readonly (readonly number[])[]): Promise<Communicator | null> {
    const mine = checkPartition(this, groups);
    await agreeOnPartition(this, groups);
    return mine ? this.groupOver([...mine]) : null;
  }

  /**
   * The group of `peers` (world ranks, in group-rank order). Its messages carry the group's
   * ranks in their tags and its own sequence numbers (one group object per rank list); as
   * every member issues the collectives of every group it belongs to in program order, the
   * per-peer message order still matches.
   */
  private groupOver(peers: number[]): Communicator {
    const n = peers.length;
    const key = peers.join(',');
    // one object (one sequence counter) per rank list, however often it is asked for
    const existing = this.groups.get(key);
    if (existing) return existing;
    let seq = 0;
    const exchange = (op: string, chunks: Float32Array[]) => {
      if (chunks.length !== n) throw new Error(`${op} in group [${key}]: expected ${n} chunks (one per member), got ${chunks.length}`);
      return this.exchangeWith(peers, `[${key}]${op}#${seq++}`, chunks);
    };
    const group: Communicator = {
      rank: peers.indexOf(this.rank),
      size: n,
      allGather: (data) => exchange('allGather', new Array<Float32Array>(n).fill(data)),
      allToAllV: (chunks) => exchange('allToAllV', chunks),
      allReduce: async (data, op = 'sum') => reduceArrays(await exchange(`allReduce.${op}`, new Array<Float32Array>(n).fill(data)), op),
      barrier: async () => {
        await exchange('barrier', new Array<Float32Array>(n).fill(new Float32Array(0)));
      },
      subgroups: async (sub) => {
        const mine = checkPartition(group, sub);
        await agreeOnPartition(group, sub);
        return mine ? this.groupOver(mine.map((r) => peers[r]!)) : null;
      },
    };
    this.groups.set(key, group);
    return group;
  }

  /** Closes every port, letting the thread exit. */
  close(): void {
    for (const port of this.ports) port?.close();
  }
}
