/**
 * Stable argsort of exact integer codes (< 2^53) by LSD radix sort on 11-bit digits: O(N),
 * no comparator calls, and stable, so points with equal codes (several points in one voxel)
 * keep their input order. torch.argsort, which Pointcept calls, does not promise any order
 * among equal keys (on CPU, torch 1.13 is not stable), so "ties by input index" is the one
 * deterministic choice that is also a valid torch result.
 */

const DIGIT_BITS = 11;
const RADIX = 1 << DIGIT_BITS;
const MASK = RADIX - 1;
const TWO32 = 4294967296;

/** The permutation that sorts `keys` ascending; ties keep input order. */
export function argsortCodes(keys: Float64Array): Int32Array {
  const n = keys.length;
  const lo = new Uint32Array(n);
  const hi = new Uint32Array(n);
  let maxHi = 0;
  let orLo = 0;
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    if (!(k >= 0 && k <= Number.MAX_SAFE_INTEGER) || Math.floor(k) !== k) {
      throw new RangeError(`argsortCodes: key[${i}] = ${k} is not a non-negative exact integer`);
    }
    const h = Math.floor(k / TWO32);
    hi[i] = h;
    lo[i] = k - h * TWO32;
    if (h > maxHi) maxHi = h;
    orLo |= lo[i]!;
  }
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let scratch = new Int32Array(n);
  const count = new Int32Array(RADIX);
  // Digits 0..2 cover lo bits 0..32 (the third digit reads lo bits 22..31), digits 3..4 cover hi.
  const passes: Array<[Uint32Array, number]> = [
    [lo, 0],
    [lo, 11],
    [lo, 22],
    [hi, 0],
    [hi, 11],
  ];
  const loBits = 32 - Math.clz32(orLo >>> 0);
  const hiBits = 32 - Math.clz32(maxHi);
  for (const [src, shift] of passes) {
    // Skip digits that are zero for every key (the usual case for the top bits).
    if (src === lo && shift >= loBits) continue;
    if (src === hi && shift >= hiBits) continue;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(src[i]! >>> shift) & MASK]!++;
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const idx = order[i]!;
      const d = (src[idx]! >>> shift) & MASK;
      scratch[count[d]!++] = idx;
    }
    const t = order;
    order = scratch;
    scratch = t;
  }
  return order;
}

/** inverse[order[i]] = i, so `sorted[inverse[p]]` is point p's place in the sorted sequence. */
export function invertPermutation(order: Int32Array): Int32Array {
  const n = order.length;
  const inverse = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = order[i]!;
    if (p < 0 || p >= n || inverse[p] !== -1) throw new Error(`invertPermutation: order is not a permutation (entry ${i} = ${p})`);
    inverse[p] = i;
  }
  return inverse;
}
