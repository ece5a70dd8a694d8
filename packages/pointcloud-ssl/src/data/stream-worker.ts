/**
 * The scene loader thread of a SceneStream: reads scenes from disk and runs the training
 * pipeline for the micro-batches it is asked for, and sends the views back, their buffers
 * transferred (not copied). Built as its own entry (dist/stream-worker.js).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadScene } from './datasets.js';
import { PointCloudFormatError } from './formats/text.js';
import type { PointCloudBatch } from './point-cloud.js';
import { type StreamPlan, makeMicroBatch } from './stream.js';

function buffers(batch: PointCloudBatch): ArrayBuffer[] {
  const out = [batch.coord.buffer, batch.offset.buffer];
  if (batch.color) out.push(batch.color.buffer);
  if (batch.normal) out.push(batch.normal.buffer);
  if (batch.label) out.push(batch.label.buffer);
  // A buffer listed twice cannot be transferred; views of one buffer share it.
  return [...new Set(out)] as ArrayBuffer[];
}

function serve(plan: StreamPlan): void {
  const port = parentPort!;
  const load = (i: number) => loadScene(plan.scenes[i]!);
  // One request at a time, in arrival order: the thread's work is the loading itself.
  let queue = Promise.resolve();
  port.on('message', (msg: { id: number; step: number; micro: number }) => {
    queue = queue.then(async () => {
      try {
        const views = await makeMicroBatch(plan, msg.step, msg.micro, load, plan.scenes.length);
        port.postMessage({ id: msg.id, ok: true, views }, views.flatMap(buffers));
      } catch (e) {
        const err = e as Error;
        const error = { name: err.name, message: err.message, ...(err instanceof PointCloudFormatError ? { file: err.file, detail: err.detail } : {}) };
        port.postMessage({ id: msg.id, ok: false, error });
      }
    });
  });
}

if (parentPort && (workerData as { kind?: string } | null)?.kind === 'kiln-scene-stream') serve((workerData as { plan: StreamPlan }).plan);
