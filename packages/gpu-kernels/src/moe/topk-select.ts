/**
 * Top-k selection with a chosen order for equal values: 'lowest-index' (equal values in index
 * order, as sorted GPU top-k results and every kernel of this package) or 'torch-cpu',
 * torch.topk's exact selection order on CPU, so that ties resolve as in Megatron-Core run on
 * PyTorch. PyTorch's CPU kernel (ATen TopKImpl.h) fills (value, index) pairs and then, with
 * the comparator "x before y iff (isnan(x) && !isnan(y)) || x > y":
 *   - when k·64 ≤ n: std::partial_sort of the first k;
 *   - otherwise: std::nth_element at k−1, then (if sorted) std::sort of the first k−1.
 * Equal values are therefore ordered by libstdc++'s introselect / introsort / heap steps,
 * which this module reproduces step for step (same pivots, swaps and insertion sorts).
 */

type Pair = { v: number; i: number };

const before = (x: Pair, y: Pair): boolean => (Number.isNaN(x.v) && !Number.isNaN(y.v)) || x.v > y.v;

/** floor(log2(n)) for n ≥ 1 (libstdc++'s std::__lg). */
const lg = (n: number): number => 31 - Math.clz32(n);

function swap(a: Pair[], i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

function moveMedianToFirst(a: Pair[], result: number, x: number, y: number, z: number): void {
  if (before(a[x]!, a[y]!)) {
    if (before(a[y]!, a[z]!)) swap(a, result, y);
    else if (before(a[x]!, a[z]!)) swap(a, result, z);
    else swap(a, result, x);
  } else if (before(a[x]!, a[z]!)) swap(a, result, x);
  else if (before(a[y]!, a[z]!)) swap(a, result, z);
  else swap(a, result, y);
}

function unguardedPartition(a: Pair[], first: number, last: number, pivot: number): number {
  for (;;) {
    while (before(a[first]!, a[pivot]!)) first++;
    last--;
    while (before(a[pivot]!, a[last]!)) last--;
    if (!(first < last)) return first;
    swap(a, first, last);
    first++;
  }
}

function unguardedPartitionPivot(a: Pair[], first: number, last: number): number {
  const mid = first + Math.floor((last - first) / 2);
  moveMedianToFirst(a, first, first + 1, mid, last - 1);
  return unguardedPartition(a, first + 1, last, first);
}

function unguardedLinearInsert(a: Pair[], last: number): void {
  const val = a[last]!;
  let next = last - 1;
  while (before(val, a[next]!)) {
    a[last] = a[next]!;
    last = next;
    next--;
  }
  a[last] = val;
}

function insertionSort(a: Pair[], first: number, last: number): void {
  if (first === last) return;
  for (let i = first + 1; i < last; i++) {
    if (before(a[i]!, a[first]!)) {
      const val = a[i]!;
      for (let j = i; j > first; j--) a[j] = a[j - 1]!;
      a[first] = val;
    } else {
      unguardedLinearInsert(a, i);
    }
  }
}

function pushHeap(a: Pair[], first: number, hole: number, top: number, value: Pair): void {
  let parent = Math.floor((hole - 1) / 2);
  while (hole > top && before(a[first + parent]!, value)) {
    a[first + hole] = a[first + parent]!;
    hole = parent;
    parent = Math.floor((hole - 1) / 2);
  }
  a[first + hole] = value;
}

function adjustHeap(a: Pair[], first: number, hole: number, len: number, value: Pair): void {
  const top = hole;
  let second = hole;
  while (second < Math.floor((len - 1) / 2)) {
    second = 2 * (second + 1);
    if (before(a[first + second]!, a[first + second - 1]!)) second--;
    a[first + hole] = a[first + second]!;
    hole = second;
  }
  if ((len & 1) === 0 && second === Math.floor((len - 2) / 2)) {
    second = 2 * (second + 1);
    a[first + hole] = a[first + second - 1]!;
    hole = second - 1;
  }
  pushHeap(a, first, hole, top, value);
}

function makeHeap(a: Pair[], first: number, last: number): void {
  const len = last - first;
  if (len < 2) return;
  let parent = Math.floor((len - 2) / 2);
  for (;;) {
    adjustHeap(a, first, parent, len, a[first + parent]!);
    if (parent === 0) return;
    parent--;
  }
}

function popHeap(a: Pair[], first: number, last: number, result: number): void {
  const value = a[result]!;
  a[result] = a[first]!;
  adjustHeap(a, first, 0, last - first, value);
}

function heapSelect(a: Pair[], first: number, middle: number, last: number): void {
  makeHeap(a, first, middle);
  for (let i = middle; i < last; i++) if (before(a[i]!, a[first]!)) popHeap(a, first, middle, i);
}

function sortHeap(a: Pair[], first: number, last: number): void {
  while (last - first > 1) {
    last--;
    popHeap(a, first, last, last);
  }
}

function partialSort(a: Pair[], first: number, middle: number, last: number): void {
  heapSelect(a, first, middle, last);
  sortHeap(a, first, middle);
}

function nthElement(a: Pair[], first: number, nth: number, last: number): void {
  if (first === last || nth === last) return;
  let depth = 2 * lg(last - first);
  while (last - first > 3) {
    if (depth === 0) {
      heapSelect(a, first, nth + 1, last);
      swap(a, first, nth);
      return;
    }
    depth--;
    const cut = unguardedPartitionPivot(a, first, last);
    if (cut <= nth) first = cut;
    else last = cut;
  }
  insertionSort(a, first, last);
}

const THRESHOLD = 16;

function introsortLoop(a: Pair[], first: number, last: number, depth: number): void {
  while (last - first > THRESHOLD) {
    if (depth === 0) {
      partialSort(a, first, last, last);
      return;
    }
    depth--;
    const cut = unguardedPartitionPivot(a, first, last);
    introsortLoop(a, cut, last, depth);
    last = cut;
  }
}

function stdSort(a: Pair[], first: number, last: number): void {
  if (first === last) return;
  introsortLoop(a, first, last, 2 * lg(last - first));
  if (last - first > THRESHOLD) {
    insertionSort(a, first, first + THRESHOLD);
    for (let i = first + THRESHOLD; i < last; i++) unguardedLinearInsert(a, i);
  } else {
    insertionSort(a, first, last);
  }
}

/** How equal values are ordered by `topkIndices`. */
export type TopkTieOrder = 'torch-cpu' | 'lowest-index';
export const TOPK_TIE_ORDERS: readonly TopkTieOrder[] = ['lowest-index', 'torch-cpu'];

/**
 * The positions of the k largest of `values[offset + i·stride]`, i < n (NaN counts as the
 * largest, as in torch), largest first. With 'torch-cpu' (the default), the k positions
 * torch.topk (CPU, largest=True) returns, in its output order; `sorted = false` skips the
 * final sort as torch does. Used for rows (stride 1) and for columns (stride = row length).
 */
export function topkIndices(
  values: ArrayLike<number>,
  n: number,
  k: number,
  offset = 0,
  stride = 1,
  sorted = true,
  tieOrder: TopkTieOrder = 'torch-cpu',
): number[] {
  if (!(Number.isInteger(k) && k >= 0 && k <= n)) throw new RangeError(`topk: k (${k}) must be an integer in [0, ${n}]`);
  if (k === 0) return [];
  const q: Pair[] = new Array(n);
  for (let j = 0; j < n; j++) q[j] = { v: values[offset + j * stride]!, i: j };
  if (tieOrder === 'lowest-index') {
    q.sort((x, y) => (before(x, y) ? -1 : before(y, x) ? 1 : x.i - y.i));
  } else if (k * 64 <= n) {
    partialSort(q, 0, k, n);
  } else {
    nthElement(q, 0, k - 1, n);
    if (sorted) stdSort(q, 0, k - 1);
  }
  const out = new Array<number>(k);
  for (let j = 0; j < k; j++) out[j] = q[j]!.i;
  return out;
}
