/**
 * A metric series is named by its metric and, optionally, a series key that tells apart
 * several series of one metric in a run: `loss` of each judge a LInCo run trains
 * (`judge=region:浙江省`), or of each rank. The store keys a series by one string,
 * `metric{key}` (braces cannot occur in a metric name, so it splits back unambiguously);
 * the API takes and answers the two parts separately as well.
 */

/** Metric names: letters, digits and `_ . / : -`. */
export const METRIC_PATTERN = '^[A-Za-z0-9_./:-]+$';
/** Series keys: any printable text without braces (Chinese included), 1–200 characters. */
export const KEY_PATTERN = '^[^\\u0000-\\u001f\\u007f{}]+$';
export const MAX_METRIC_LENGTH = 100;
export const MAX_KEY_LENGTH = 200;

const metricRe = new RegExp(METRIC_PATTERN);
const keyRe = new RegExp(KEY_PATTERN, 'u');

/** The stored name of a metric's series under `key` (the metric itself without one). */
export function seriesName(metric: string, key?: string): string {
  return key === undefined ? metric : `${metric}{${key}}`;
}

/** A stored series name back into its metric and key. */
export function parseSeriesName(name: string): { metric: string; key?: string } {
  const open = name.indexOf('{');
  if (open < 0 || !name.endsWith('}')) return { metric: name };
  return { metric: name.slice(0, open), key: name.slice(open + 1, -1) };
}

/** Whether a string names a series: a metric, or `metric{key}`. */
export function isSeriesName(name: string): boolean {
  const { metric, key } = parseSeriesName(name);
  if (metric.length === 0 || metric.length > MAX_METRIC_LENGTH || !metricRe.test(metric)) return false;
  return key === undefined || (key.length > 0 && key.length <= MAX_KEY_LENGTH && keyRe.test(key));
}
