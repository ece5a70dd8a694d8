// Run under mpirun: exercises every collective and prints one JSON line per rank.
import { finalizeMpi, initMpi } from '../dist/index.js';

const world = await initMpi({ onError: 'throw' });
const { rank, size } = world;
const out = { rank, size };

out.sum = Array.from(await world.allReduce(Float32Array.from([rank, 1.5])));
out.avg = Array.from(await world.allReduce(Float32Array.from([rank * 2]), 'avg'));
out.max = Array.from(await world.allReduce(Int32Array.from([rank * 7, -rank]), 'max'));
out.min = Array.from(await world.allReduce(Int32Array.from([rank * 7, -rank]), 'min'));
out.gathered = (await world.allGather(new Float32Array(rank + 1).fill(rank))).map((a) => Array.from(a));
// rank r sends (r + 1) copies of 100·r + peer to each peer
const chunks = Array.from({ length: size }, (_, peer) => new Float32Array(rank + 1).fill(100 * rank + peer));
out.alltoallv = (await world.allToAllV(chunks)).map((a) => Array.from(a));
out.alltoall = Array.from(await world.allToAll(Int32Array.from({ length: size }, (_, peer) => 10 * rank + peer)));
out.broadcast = Array.from(await world.broadcast(rank === size - 1 ? Float32Array.from([4, 2]) : new Float32Array(2), size - 1));
await world.barrier();

// Sub-communicators from rank lists, as a RankGenerator would give them (tp = 2).
const pairs = [];
for (let r = 0; r + 1 < size; r += 2) pairs.push([r, r + 1]);
if (size % 2 === 1) pairs.push([size - 1]);
const tp = await world.subgroups(pairs);
out.tp = { rank: tp.rank, size: tp.size, sum: Array.from(await tp.allReduce(Float32Array.from([rank]))) };
const strided = [[...Array(size).keys()].filter((r) => r % 2 === 0).reverse()]; // only even ranks, reversed order
const evens = await world.subgroups(strided);
out.evens = evens === null ? null : { rank: evens.rank, size: evens.size, gathered: (await evens.allGather(Int32Array.from([rank]))).map((a) => a[0]) };

// The event loop keeps running while a collective waits for a late rank.
let ticks = 0;
const timer = setInterval(() => ticks++, 5);
if (rank === 1) await new Promise((r) => setTimeout(r, 300));
await world.allReduce(Float32Array.from([1]));
clearInterval(timer);
out.ticksWhileWaiting = ticks;

console.log(JSON.stringify(out));
await finalizeMpi();
