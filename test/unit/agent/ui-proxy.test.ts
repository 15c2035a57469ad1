/** Which requests `cronplane ui`'s proxy refuses before signing anything (DNS rebinding, CSRF). */
import { describe, expect, it } from 'vitest';
import { refusal } from '../../../agent/ui-proxy.ts';

const hosts = new Set(['127.0.0.1:8001', 'localhost:8001']);

describe('refusal', () => {
  it('lets the UI page through: reads, and writes from its own origin', () => {
    expect(refusal('GET', { host: '127.0.0.1:8001' }, hosts)).toBeUndefined();
    expect(
      refusal('GET', { host: 'localhost:8001', 'sec-fetch-site': 'same-origin' }, hosts),
    ).toBeUndefined();
    expect(
      refusal('POST', { host: '127.0.0.1:8001', origin: 'http://127.0.0.1:8001' }, hosts),
    ).toBeUndefined();
    expect(
      refusal('DELETE', { host: '127.0.0.1:8001', 'sec-fetch-site': 'same-origin' }, hosts),
    ).toBeUndefined();
  });

  it('refuses another Host (a rebound DNS name), whatever the method', () => {
    expect(refusal('GET', { host: 'evil.example:8001' }, hosts)).toMatch(/DNS rebinding/);
    expect(refusal('GET', { host: '127.0.0.1:9999' }, hosts)).toMatch(/not this proxy/);
    expect(refusal('GET', {}, hosts)).toMatch(/\(none\)/);
  });

  it('refuses writes from another origin or with no origin at all, and any cross-site request', () => {
    expect(refusal('POST', { host: '127.0.0.1:8001', origin: 'http://evil.example' }, hosts)).toMatch(
      /origin/,
    );
    expect(refusal('POST', { host: '127.0.0.1:8001', origin: 'https://127.0.0.1:8001' }, hosts)).toMatch(
      /origin/,
    );
    expect(refusal('POST', { host: '127.0.0.1:8001', origin: 'null' }, hosts)).toMatch(/origin/);
    expect(refusal('PUT', { host: '127.0.0.1:8001' }, hosts)).toMatch(/CSRF/);
    expect(refusal('GET', { host: '127.0.0.1:8001', 'sec-fetch-site': 'cross-site' }, hosts)).toMatch(
      /cross-site/,
    );
    expect(refusal('GET', { host: '127.0.0.1:8001', 'sec-fetch-site': 'same-site' }, hosts)).toMatch(
      /cross-site/,
    );
  });
});
