/**
 * Per-GPU peak figures of NVIDIA's data-center GPUs, from NVIDIA's public datasheets. Tensor
 * core peaks are DENSE (the datasheets' headline numbers are "with sparsity", twice these).
 * Bandwidths are per GPU and per direction (NVLink's advertised figure counts both
 * directions). Systems: HGX/DGX boards for H100, H200 and B200 (8 GPUs per NVLink domain),
 * GB200/GB300 NVL72 racks (72 GPUs per NVLink domain). The scale-out network is one NIC per
 * GPU: ConnectX-7 (400 Gb/s) on H100, H200, B200 and GB200, ConnectX-8 (800 Gb/s) on GB300.
 *
 * Sources (NVIDIA product pages and datasheets):
 * - H100 SXM: nvidia.com/en-us/data-center/h100 — BF16 1,979 / FP8 3,958 TFLOPS (sparse),
 *   80 GB HBM3 at 3.35 TB/s, NVLink 900 GB/s.
 * - H200 SXM: nvidia.com/en-us/data-center/h200 — the same tensor peaks as H100, 141 GB
 *   HBM3e at 4.8 TB/s, NVLink 900 GB/s.
 * - B200 (HGX B200, 8 GPUs): nvidia.com/en-us/data-center/hgx — FP4 144 / FP8 72 /
 *   BF16 36 PFLOPS per board (sparse), 1.4 TB HBM3e (180 GB per GPU) at 8 TB/s per GPU,
 *   NVLink 1.8 TB/s per GPU.
 * - GB200 NVL72: nvidia.com/en-us/data-center/gb200-nvl72 — FP4 1,440 / FP8 720 /
 *   BF16 360 PFLOPS per rack (sparse), 13.4 TB HBM3e (186 GB per GPU), 576 TB/s (8 TB/s per
 *   GPU), NVLink 130 TB/s (1.8 TB/s per GPU).
 * - GB300 NVL72: nvidia.com/en-us/data-center/gb300-nvl72 — FP4 1,080 PFLOPS dense per rack,
 *   FP8 720 / BF16 360 PFLOPS (sparse), up to 20.7 TB HBM3e (288 GB per GPU), 576 TB/s,
 *   NVLink 130 TB/s, ConnectX-8 800 Gb/s per GPU.
 */

export type GpuName = 'h100' | 'h200' | 'b200' | 'gb200' | 'gb300';

export interface GpuSpec {
  name: string;
  /** Dense tensor-core peak, FLOP/s, per precision (null: not supported). */
  bf16: number;
  fp8: number;
  fp4: number | null;
  /** HBM capacity (bytes) and bandwidth (bytes/s). */
  hbmBytes: number;
  hbmBandwidth: number;
  /** NVLink bandwidth per GPU and direction (bytes/s), and GPUs per NVLink domain. */
  nvlinkBandwidth: number;
  nvlinkDomain: number;
  /** Scale-out network (InfiniBand / RoCE) bandwidth per GPU and direction (bytes/s). */
  networkBandwidth: number;
}

const T = 1e12;
const GB = 1e9;

export const GPUS: Record<GpuName, GpuSpec> = {
  h100: { name: 'H100 SXM', bf16: 989.5 * T, fp8: 1979 * T, fp4: null, hbmBytes: 80 * GB, hbmBandwidth: 3.35 * T, nvlinkBandwidth: 450 * GB, nvlinkDomain: 8, networkBandwidth: 50 * GB },
  h200: { name: 'H200 SXM', bf16: 989.5 * T, fp8: 1979 * T, fp4: null, hbmBytes: 141 * GB, hbmBandwidth: 4.8 * T, nvlinkBandwidth: 450 * GB, nvlinkDomain: 8, networkBandwidth: 50 * GB },
  b200: { name: 'B200 (HGX)', bf16: 2250 * T, fp8: 4500 * T, fp4: 9000 * T, hbmBytes: 180 * GB, hbmBandwidth: 8 * T, nvlinkBandwidth: 900 * GB, nvlinkDomain: 8, networkBandwidth: 50 * GB },
  gb200: { name: 'GB200 NVL72', bf16: 2500 * T, fp8: 5000 * T, fp4: 10000 * T, hbmBytes: 186 * GB, hbmBandwidth: 8 * T, nvlinkBandwidth: 900 * GB, nvlinkDomain: 72, networkBandwidth: 50 * GB },
  gb300: { name: 'GB300 NVL72', bf16: 2500 * T, fp8: 5000 * T, fp4: 15000 * T, hbmBytes: 288 * GB, hbmBandwidth: 8 * T, nvlinkBandwidth: 900 * GB, nvlinkDomain: 72, networkBandwidth: 100 * GB },
};

export type Precision = 'bf16' | 'fp8' | 'fp4';

/** The dense peak of `precision` on `gpu` (an Error where the GPU has no such tensor cores). */
export function peakFlops(gpu: GpuSpec, precision: Precision): number {
  const p = gpu[precision];
  if (p === null) throw new Error(`${gpu.name} has no ${precision.toUpperCase()} tensor cores`);
  return p;
}

/** The GPU of a name (case-insensitive), or an Error listing the known ones. */
export function gpuByName(name: string): GpuSpec {
  const g = GPUS[name.toLowerCase() as GpuName];
  if (!g) throw new Error(`unknown GPU '${name}' (known: ${Object.keys(GPUS).join(', ')})`);
  return g;
}
