/** Where NVFP4's 16-element blocks lie (kept apart so kernels can import it without cycles). */
export type BlockShape = '1x16' | '16x16';

/** Block index of flat element i, and the block-scale tensor's shape. */
export function blockLayout(shape: readonly number[], blockShape: BlockShape): { blockOf: (i: number) => number; scaleShape: number[]; blocks: number } {
  const cols = shape[shape.length - 1]!;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (blockShape === '1x16') {
    return { blockOf: (i) => Math.floor(i / 16), scaleShape: [...shape.slice(0, -1), cols / 16], blocks: (rows * cols) / 16 };
  }
  const bc = cols / 16;
  return {
    blockOf: (i) => Math.floor(Math.floor(i / cols) / 16) * bc + Math.floor((i % cols) / 16),
    scaleShape: [rows / 16, bc],
    blocks: (rows / 16) * bc,
  };
}
