import type { MessagePort } from 'node:worker_threads';
import { type Communicator, reduceArrays } from './communicator.js';

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

  /** Sends `chunks[peer]` to each peer and gathers one message from each. */
  private async exchange(op: string, chunks: Float32Array[]): Promise<Float32Array[]> {
    if (chunks.length !== this.size) {
      throw new Error(`${op}: expected ${this.size} chunks (one per rank), got ${chunks.length}`);
    }
    const tag = `${op}#${this.seq++}`;
    for (let peer = 0; peer < this.size; peer++) if (peer !== this.rank) this.send(peer, tag, chunks[peer]!);
    const received = await Promise.all(
      chunks.map((chunk, peer) => (peer === this.rank ? Promise.resolve(chunk.slice()) : this.receive(peer, tag))),
    );
    return received;
  }

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

  /** Closes every port, letting the thread exit. */
  close(): void {
    for (const port of this.ports) port?.close();
  }
}
