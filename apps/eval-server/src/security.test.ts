import { describe, expect, it } from 'vitest';
import { nestingDepth, parseJsonBody } from './json-body.js';
import { AuthFailureLimiter, allowedHosts, bearerMatches, checkToken, hostName } from './security.js';

describe('bearerMatches', () => {
  const token = 'abcdefghijklmnop';
  it('accepts exactly the token', () => {
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
  });
  it('refuses prefixes, extensions, other schemes and missing headers', () => {
    for (const header of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Bearer ${token.slice(0, 1)}`, 'Bearer ', `bearer ${token}`, `Token ${token}`, token, undefined, '']) {
      expect(bearerMatches(header, token), String(header)).toBe(false);
    }
  });
});

describe('tokens and hosts', () => {
  it('checks the token length and characters', () => {
    expect(() => checkToken('x'.repeat(15), 'the token')).toThrow('the token is 15 characters long; use at least 16');
    expect(() => checkToken('x'.repeat(15) + ' ', 'the token')).toThrow('printable ASCII');
    expect(() => checkToken('x'.repeat(16), 'the token')).not.toThrow();
  });

  it('reads host names from Host headers', () => {
    expect(hostName('LocalHost:8787')).toBe('localhost');
    expect(hostName('[::1]:80')).toBe('[::1]');
    expect(hostName('example.org')).toBe('example.org');
    expect(hostName(undefined)).toBeUndefined();
    expect(hostName('[::1')).toBeUndefined();
  });

  it('allows loopback names, the specific listen address and extra names', () => {
    expect([...(allowedHosts('127.0.0.1', []) as Set<string>)].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    expect(allowedHosts('0.0.0.0', ['lab.lan:8787'])).toEqual(new Set(['localhost', '127.0.0.1', '[::1]', 'lab.lan']));
    expect((allowedHosts('192.168.1.5', []) as Set<string>).has('192.168.1.5')).toBe(true);
    expect((allowedHosts('fe80::1', []) as Set<string>).has('[fe80::1]')).toBe(true);
    expect(allowedHosts('0.0.0.0', ['*'])).toBe('any');
  });
});

describe('AuthFailureLimiter', () => {
  it('blocks an address after `limit` failures in the window, and only that address, until they age out', () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(3, 1000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.blockedFor('a')).toBe(0);
      limiter.fail('a');
      now += 100;
    }
    expect(limiter.blockedFor('a')).toBe(700);
    expect(limiter.blockedFor('b')).toBe(0);
    now = 1001;
    expect(limiter.blockedFor('a')).toBe(0);
  });
});

describe('parseJsonBody', () => {
  it('measures nesting outside strings', () => {
    expect(nestingDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(nestingDepth('{"a":"[[[[{{{{\\\\\\"[["}')).toBe(1);
    expect(nestingDepth('['.repeat(100), 64)).toBe(65);
  });

  it('refuses deep nesting, reserved keys and broken JSON with 400s', () => {
    expect(() => parseJsonBody(`{"a":${'['.repeat(65)}${']'.repeat(65)}}`)).toThrow('nests deeper than 64 levels');
    expect(parseJsonBody(`{"a":${'['.repeat(63)}${']'.repeat(63)}}`)).toBeDefined();
    expect(() => parseJsonBody('{"a":[{"__proto__":{"x":1}}]}')).toThrow("body/a/0/__proto__: the key '__proto__' is not allowed");
    expect(() => parseJsonBody('{"constructor":{"prototype":{}}}')).toThrow("body/constructor: the key 'constructor' is not allowed");
    expect(() => parseJsonBody('{"a":')).toThrow('not valid JSON');
    expect(() => parseJsonBody('  ')).toThrow('the body is empty');
    try {
      parseJsonBody('{"toString":1}');
    } catch (err) {
      expect((err as { statusCode: number }).statusCode).toBe(400);
    }
    expect(parseJsonBody('{"name":"__proto__","x":"toString"}')).toEqual({ name: '__proto__', x: 'toString' });
  });
});
