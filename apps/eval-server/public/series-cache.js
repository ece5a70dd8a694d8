// Metric series of runs, fetched incrementally. The first time a series is shown, the
// server's min/max reduction of its whole range (at most OVERVIEW_POINTS points; every point
// when there are fewer); afterwards only the points after the last step held, page by page.
// The chart reduces again per pixel column, so a series of any length draws from a bounded
// number of points and the envelope (spikes included) is kept. Keyed by run, so several
// runs' series can be held and drawn together.

export const OVERVIEW_POINTS = 4000;
export const PAGE = 10_000;
/** Past this many points held, a series is fetched again as a reduction. */
export const MAX_HELD = 100_000;

export class SeriesCache {
  constructor(fetchJson) {
    this.fetchJson = fetchJson;
    this.runs = new Map();
  }

  /**
   * Brings the series of a run up to date. `listed` is the run's `series` list from
   * GET /api/runs/:id ({ name, points, lastStep }); returns a Map name → { steps, values, total }.
   */
  async update(runId, listed) {
    let held = this.runs.get(runId);
    if (!held) {
      held = new Map();
      this.runs.set(runId, held);
    }
    for (const info of listed) {
      const s = held.get(info.name);
      if (s && s.lastStep === info.lastStep && s.total === info.points) continue;
      if (!s || info.lastStep < s.lastStep || (info.lastStep === s.lastStep && info.points !== s.total) || s.steps.length > MAX_HELD) {
        held.set(info.name, await this.overview(runId, info));
      } else {
        await this.append(runId, s, info);
      }
    }
    for (const name of [...held.keys()]) if (!listed.some((l) => l.name === name)) held.delete(name);
    return held;
  }

  async overview(runId, info) {
    const { series } = await this.fetchJson(`/api/runs/${encodeURIComponent(runId)}/metrics?name=${encodeURIComponent(info.name)}&maxPoints=${OVERVIEW_POINTS}`);
    const got = series[info.name] ?? { steps: [], values: [], times: [], total: 0 };
    return { steps: got.steps, values: got.values, times: got.times ?? got.steps.map(() => null), total: got.total, lastStep: got.steps.at(-1) ?? -1 };
  }

  async append(runId, s, info) {
    let after = s.lastStep;
    for (;;) {
      const { series } = await this.fetchJson(
        `/api/runs/${encodeURIComponent(runId)}/metrics?name=${encodeURIComponent(info.name)}&after=${after}&limit=${PAGE}`,
      );
      const page = series[info.name];
      if (!page) break;
      for (let i = 0; i < page.steps.length; i++) {
        s.steps.push(page.steps[i]);
        s.values.push(page.values[i]);
        s.times.push(page.times?.[i] ?? null);
      }
      s.total = page.total;
      if (page.steps.length) s.lastStep = page.steps.at(-1);
      if (page.next === null) break;
      after = page.next;
    }
  }
}
