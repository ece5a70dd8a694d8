/**
 * Point-cloud files from the command line (uses the built @kiln/pointcloud-ssl):
 *   node convert.mjs info <path>                       scenes, points, fields, label histogram
 *   node convert.mjs convert <in> <out.ply|out.pcd>    any readable input to PLY or PCD
 *   node convert.mjs synthetic <out-dir> [--scenes 4] [--seed 0] [--points 4096] [--format ply|pcd]
 *                                                      synthetic rooms, one file per scene
 * Inputs: .ply, .pcd, .h5/.hdf5 (ModelNet/ScanObjectNN layout) or an S3DIS room/area folder.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

const pc = await import('@kiln/pointcloud-ssl');

function option(args, name, fallback) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return v;
}

/** Class names for the label histogram: --classes s3dis (default) | scannet20 | none. */
function classNames(args) {
  const which = option(args, 'classes', 's3dis');
  if (which === 's3dis') return pc.S3DIS_CLASSES;
  if (which === 'scannet20') return pc.SCANNET20_CLASSES;
  if (which === 'none') return [];
  throw new Error(`--classes must be s3dis, scannet20 or none, got '${which}'`);
}

function describe(batch, names = pc.S3DIS_CLASSES) {
  const n = batch.coord.length / 3;
  const fields = ['coord', 'color', 'normal', 'label'].filter((f) => batch[f] !== undefined);
  console.log(`${batch.offset.length} scene(s), ${n} points, fields: ${fields.join(', ')}`);
  if (batch.label) {
    const counts = new Map();
    for (const l of batch.label) counts.set(l, (counts.get(l) ?? 0) + 1);
    for (const [l, c] of [...counts].sort((a, b) => a[0] - b[0])) {
      const name = l === -1 ? 'ignore' : (names[l] ?? '');
      console.log(`  label ${String(l).padStart(3)} ${name.padEnd(14)} ${c}`);
    }
  }
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'info' && args[0]) {
    describe(await pc.readPointCloud(args[0]), classNames(args));
  } else if (command === 'convert' && args[0] && args[1]) {
    const batch = await pc.readPointCloud(args[0]);
    pc.validatePointCloud(batch, args[0]);
    await pc.writePointCloud(args[1], batch);
    console.log(`wrote ${args[1]} (${batch.coord.length / 3} points)`);
  } else if (command === 'synthetic' && args[0]) {
    const scenes = Number(option(args, 'scenes', '4'));
    const seed = Number(option(args, 'seed', '0'));
    const points = Number(option(args, 'points', '4096'));
    const format = option(args, 'format', 'ply');
    if (format !== 'ply' && format !== 'pcd') throw new Error(`--format must be ply or pcd, got ${format}`);
    await mkdir(args[0], { recursive: true });
    for (const [i, scene] of pc.generateSyntheticScenes({ scenes, seed, points }).entries()) {
      const file = path.join(args[0], `scene_${String(i).padStart(4, '0')}.${format}`);
      await pc.writePointCloud(file, scene);
      console.log(`wrote ${file}`);
    }
  } else {
    console.error('usage: convert.mjs info <path> [--classes s3dis|scannet20|none] | convert <in> <out.ply|out.pcd> | synthetic <dir> [--scenes N --seed S --points P --format ply|pcd]');
    process.exitCode = 2;
  }
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
}
