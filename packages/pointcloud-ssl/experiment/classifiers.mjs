// Per-point classifier baselines on the network's own input features (centred, scaled
// coordinates and colours): multinomial logistic regression and k-nearest neighbours.
// If a fine-tuned network does not beat these, it has learned nothing beyond per-point cues.

/** Column means and standard deviations of rows [n, c]. */
function standardiser(x, c) {
  const n = x.length / c;
  const mu = new Float64Array(c);
  const sd = new Float64Array(c);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) mu[k] += x[i * c + k];
  for (let k = 0; k < c; k++) mu[k] /= Math.max(1, n);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) sd[k] += (x[i * c + k] - mu[k]) ** 2;
  for (let k = 0; k < c; k++) sd[k] = Math.sqrt(sd[k] / Math.max(1, n)) + 1e-6;
  return (v) => {
    const out = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = (v[i] - mu[i % c]) / sd[i % c];
    return out;
  };
}

/** Rows whose label is not −1, at most `cap` of them (an even stride, deterministic). */
export function labelledRows(x, label, c, cap = Number.POSITIVE_INFINITY) {
  const idx = [];
  for (let i = 0; i < label.length; i++) if (label[i] >= 0) idx.push(i);
  const stride = Math.max(1, idx.length / cap);
  const keep = [];
  for (let j = 0; j < idx.length && keep.length < cap; j += stride) keep.push(idx[Math.floor(j)]);
  const xs = new Float32Array(keep.length * c);
  const ys = new Int32Array(keep.length);
  keep.forEach((i, r) => {
    for (let k = 0; k < c; k++) xs[r * c + k] = x[i * c + k];
    ys[r] = label[i];
  });
  return { x: xs, y: ys };
}

/** Softmax regression, full-batch Adam on standardised features, L2 1e-4; returns a predictor. */
export function fitLogistic(x, y, c, classes, { steps = 300, lr = 0.1 } = {}) {
  const std = standardiser(x, c);
  const xs = std(x);
  const n = y.length;
  const d = c + 1;
  const w = new Float64Array(d * classes);
  const m = new Float64Array(w.length);
  const v = new Float64Array(w.length);
  const g = new Float64Array(w.length);
  const p = new Float64Array(classes);
  for (let t = 1; t <= steps; t++) {
    g.fill(0);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let k = 0; k < classes; k++) {
        let s = w[c * classes + k];
        for (let j = 0; j < c; j++) s += xs[i * c + j] * w[j * classes + k];
        p[k] = s;
        if (s > max) max = s;
      }
      let z = 0;
      for (let k = 0; k < classes; k++) z += p[k] = Math.exp(p[k] - max);
      for (let k = 0; k < classes; k++) {
        const e = p[k] / z - (k === y[i] ? 1 : 0);
        for (let j = 0; j < c; j++) g[j * classes + k] += e * xs[i * c + j];
        g[c * classes + k] += e;
      }
    }
    for (let q = 0; q < w.length; q++) {
      const gq = g[q] / Math.max(1, n) + 1e-4 * w[q];
      m[q] = 0.9 * m[q] + 0.1 * gq;
      v[q] = 0.999 * v[q] + 0.001 * gq * gq;
      w[q] -= (lr * (m[q] / (1 - 0.9 ** t))) / (Math.sqrt(v[q] / (1 - 0.999 ** t)) + 1e-8);
    }
  }
  return (xt) => {
    const s = std(xt);
    const rows = xt.length / c;
    const out = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      let best = 0;
      let bestScore = -Infinity;
      for (let k = 0; k < classes; k++) {
        let sc = w[c * classes + k];
        for (let j = 0; j < c; j++) sc += s[i * c + j] * w[j * classes + k];
        if (sc > bestScore) {
          bestScore = sc;
          best = k;
        }
      }
      out[i] = best;
    }
    return out;
  };
}

/** k-nearest neighbours (Euclidean on standardised features, majority vote, ties to the nearer). */
export function fitKnn(x, y, c, classes, { k = 9 } = {}) {
  const std = standardiser(x, c);
  const xs = std(x);
  const n = y.length;
  const kk = Math.min(k, n);
  return (xt) => {
    const s = std(xt);
    const rows = xt.length / c;
    const out = new Int32Array(rows);
    const bestD = new Float64Array(kk);
    const bestY = new Int32Array(kk);
    const votes = new Float64Array(classes);
    for (let i = 0; i < rows; i++) {
      bestD.fill(Infinity);
      for (let r = 0; r < n; r++) {
        let dist = 0;
        for (let j = 0; j < c; j++) dist += (s[i * c + j] - xs[r * c + j]) ** 2;
        if (dist >= bestD[kk - 1]) continue;
        let at = kk - 1;
        while (at > 0 && bestD[at - 1] > dist) {
          bestD[at] = bestD[at - 1];
          bestY[at] = bestY[at - 1];
          at--;
        }
        bestD[at] = dist;
        bestY[at] = y[r];
      }
      votes.fill(0);
      // Weight 1 + tiny rank bonus: a tie goes to the class of the nearer neighbour.
      for (let q = 0; q < kk; q++) votes[bestY[q]] += 1 + (kk - q) * 1e-6;
      let best = 0;
      for (let q = 1; q < classes; q++) if (votes[q] > votes[best]) best = q;
      out[i] = best;
    }
    return out;
  };
}
