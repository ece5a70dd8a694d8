#!/usr/bin/env node
/**
 * Which WebGPU adapter Dawn finds here, as one JSON line: {ok, vendor, architecture,
 * description, software} or {ok: false, reason}. Exit 0 when a hardware adapter is found,
 * 3 when only a software one (lavapipe, SwiftShader), 4 when none.
 */
import { probeWebGpu } from '@kiln/tensor';

const found = await probeWebGpu();
if ('reason' in found) {
  console.log(JSON.stringify({ ok: false, reason: found.reason }));
  process.exit(4);
}
console.log(JSON.stringify({ ok: true, ...found.summary }));
process.exit(found.summary.software ? 3 : 0);
