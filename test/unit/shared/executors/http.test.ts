import { describe, expect, it } from 'vitest';
import { parseTimeout } from '../../../../shared/executors/common.ts';
import {
  checkResponse,
  parseExpectBody,
  parseExpectCode,
  parseHeaders,
  parseHttpConfig,
} from '../../../../shared/executors/http.ts';

describe('parseHeaders', () => {
  it('reads a JSON array of "Name: value", splitting at the first colon', () => {
    expect(parseHeaders('["Content-Type: application/json", "X-Url:  http://a:1/b ", "Empty:"]')).toEqual([
      ['Content-Type', 'application/json'],
      ['X-Url', 'http://a:1/b'],
      ['Empty', ''],
    ]);
    expect(parseHeaders(undefined)).toEqual([]);
    expect(parseHeaders('  ')).toEqual([]);
    expect(parseHeaders('[]')).toEqual([]);
  });

  it.each([
    ['not json', /JSON array/],
    ['{"A":"b"}', /JSON array/],
    ['[1]', /entry 0 must be a string/],
    ['["NoColon"]', /entry 0 has no colon/],
    ['["Bad Name: x"]', /not a valid header name/],
    ['[": x"]', /not a valid header name/],
    ['["A: x\\r\\nB: y"]', /line break/],
  ])('rejects %s', (text, message) => {
    expect(() => parseHeaders(text)).toThrow(message);
    expect(() => parseHeaders(text)).toThrow(/^executor_config\.headers: /);
  });
});

describe('parseExpectCode', () => {
  it('reads a comma list, empty means any 2xx', () => {
    expect(parseExpectCode('200')).toEqual([200]);
    expect(parseExpectCode(' 200, 201 ,204')).toEqual([200, 201, 204]);
    expect(parseExpectCode('')).toBeNull();
    expect(parseExpectCode(undefined)).toBeNull();
  });

  it.each(['abc', '200,', '2000', '99', '600', '20O'])('rejects %s', (text) => {
    expect(() => parseExpectCode(text)).toThrow(/executor_config\.expectCode: .* is not an HTTP status code/);
  });
});

describe('parseExpectBody', () => {
  it('compiles a regular expression and understands a leading Go flag group', () => {
    expect(parseExpectBody('')).toBeNull();
    expect(parseExpectBody('"ok":\\s*true')!.test('{"ok": true}')).toBe(true);
    const re = parseExpectBody('(?is)^hello.world$')!;
    expect(re.flags).toBe('is');
    expect(re.test('HELLO\nWORLD')).toBe(true);
  });

  it('rejects invalid expressions and unsupported flags', () => {
    expect(() => parseExpectBody('(unclosed')).toThrow(/expectBody: is not a valid regular expression/);
    expect(() => parseExpectBody('(?U)a+')).toThrow(/flag 'U'/);
  });
});

describe('parseTimeout', () => {
  it('reads seconds or a Go duration, 0 = none, empty = default', () => {
    expect(parseTimeout('30', 1)).toBe(30_000);
    expect(parseTimeout('1.5', 1)).toBe(1_500);
    expect(parseTimeout('5s', 1)).toBe(5_000);
    expect(parseTimeout('250ms', 1)).toBe(250);
    expect(parseTimeout('1m30s', 1)).toBe(90_000);
    expect(parseTimeout('0', 1)).toBe(0);
    expect(parseTimeout('', 7)).toBe(7);
    expect(parseTimeout(undefined, 7)).toBe(7);
  });

  it.each(['soon', '5x', '-5s', '-1'])('rejects %s', (text) => {
    expect(() => parseTimeout(text, 0)).toThrow(/^executor_config\.timeout: /);
  });
});

describe('parseHttpConfig', () => {
  it('fills Dkron defaults', () => {
    const spec = parseHttpConfig({ url: 'http://example.test/x?y=1' });
    expect(spec).toMatchObject({
      method: 'GET',
      body: '',
      timeoutMs: 30_000,
      expectCodes: null,
      expectBody: null,
      debug: false,
    });
    expect(spec.url.href).toBe('http://example.test/x?y=1');
    expect(spec.tls).toEqual({
      noVerifyPeer: false,
      certificateFile: '',
      certificateKeyFile: '',
      rootCAsFile: '',
    });
  });

  it('reads every key', () => {
    const spec = parseHttpConfig({
      method: 'post',
      url: 'https://example.test',
      headers: '["A: 1"]',
      body: '{"x":1}',
      timeout: '5s',
      expectCode: '200,202',
      expectBody: 'ok',
      debug: 'true',
      tlsNoVerifyPeer: 'true',
      tlsCertificateFile: '/c.pem',
      tlsCertificateKeyFile: '/k.pem',
      tlsRootCAsFile: '/ca.pem',
    });
    expect(spec).toMatchObject({
      method: 'POST',
      headers: [['A', '1']],
      body: '{"x":1}',
      timeoutMs: 5_000,
      expectCodes: [200, 202],
      debug: true,
    });
    expect(spec.tls).toEqual({
      noVerifyPeer: true,
      certificateFile: '/c.pem',
      certificateKeyFile: '/k.pem',
      rootCAsFile: '/ca.pem',
    });
  });

  it.each([
    [{}, /url: is required/],
    [{ url: 'not a url' }, /url: 'not a url' is not a URL/],
    [{ url: 'ftp://x' }, /url: must be http/],
    [{ url: 'http://x', method: 'GE T' }, /method/],
    [{ url: 'http://x', tlsCertificateKeyFile: '/k' }, /tlsCertificateKeyFile: needs tlsCertificateFile/],
  ])('rejects %j', (cfg, message) => {
    expect(() => parseHttpConfig(cfg as Record<string, string>)).toThrow(message);
  });
});

describe('checkResponse', () => {
  it('accepts any 2xx by default and only the listed codes otherwise', () => {
    expect(checkResponse(204, '', null, null)).toBeNull();
    expect(checkResponse(301, '', null, null)).toMatch(/unexpected status 301 \(expected a 2xx status\)/);
    expect(checkResponse(404, '', [200, 404], null)).toBeNull();
    expect(checkResponse(200, '', [201], null)).toMatch(/unexpected status 200 \(expected 201\)/);
  });

  it('matches the body', () => {
    expect(checkResponse(200, 'all ok', null, /ok/)).toBeNull();
    expect(checkResponse(200, 'nope', null, /ok/)).toMatch(/does not match expectBody \/ok\//);
  });
});
