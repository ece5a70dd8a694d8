/**
 * What stands between the network and the store: the bearer token (compared whole, in
 * constant time), a limit on failed authentications per client address, an allow-list of
 * Host names (a page on another site that rebinds its DNS name to this machine sends its
 * own name as Host, so it is refused), and the response headers that keep a browser from
 * sniffing artifacts into HTML or running scripts from anywhere else.
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** Shortest token the server accepts: 16 characters of a generated token carry 96 bits. */
export const MIN_TOKEN_LENGTH = 16;

/** The names a loopback-bound server answers to unless told otherwise. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

export class TokenError extends Error {}

/** Throws a TokenError when the token is too short or contains what a header cannot carry. */
export function checkToken(token: string, source: string): void {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new TokenError(`${source} is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (or give none and one is generated)`);
  }
  if (!/^[\x21-\x7e]+$/.test(token)) throw new TokenError(`${source} must be printable ASCII without spaces`);
}

/** True only for exactly `Bearer <token>`: no prefix, suffix or other scheme matches. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The host name of a Host header, lower-case, without the port (`[::1]` keeps its brackets). */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : undefined;
  }
  return h.split(':')[0] || undefined;
}

/**
 * The allow-list: the loopback names, the address the server listens on when it is a
 * specific one, and every name given with --allow-host (`*` allows any Host).
 */
export function allowedHosts(listenHost: string, extra: string[]): Set<string> | 'any' {
  if (extra.includes('*')) return 'any';
  const hosts = new Set<string>([...LOOPBACK_HOSTS, ...extra.map((h) => hostName(h)).filter((h): h is string => !!h)]);
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  if (!wildcard) hosts.add(isIP(listenHost) === 6 ? `[${listenHost.toLowerCase()}]` : listenHost.toLowerCase());
  return hosts;
}

/**
 * Counts failed authentications per client address in a sliding window; once an address
 * has `limit` failures inside `windowMs`, every further write from it is refused with 429
 * until the oldest failure leaves the window (even with the right token, so that guessing
 * cannot be interleaved with good requests).
 */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `address` may try again, or 0. */
  blockedFor(address: string): number {
    const times = this.prune(address);
    if (times.length < this.limit) return 0;
    return Math.max(1, times[0]! + this.windowMs - this.now());
  }

  fail(address: string): void {
    const times = this.prune(address);
    times.push(this.now());
    this.failures.set(address, times);
    if (this.failures.size > 10_000) this.sweep();
  }

  private prune(address: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const times = (this.failures.get(address) ?? []).filter((t) => t > cutoff);
    if (times.length) this.failures.set(address, times);
    else this.failures.delete(address);
    return times;
  }

  private sweep(): void {
    for (const address of [...this.failures.keys()]) this.prune(address);
  }
}

/** Headers on every response. The dashboard loads only its own scripts and styles. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};
