import { describe, expect, it } from 'vitest';
import { loadLocalConfig } from '../../../local/config.ts';

describe('local stack configuration', () => {
  it('defaults to port 8080, emulators with any key, no IAM auth', () => {
    expect(loadLocalConfig({})).toMatchObject({
      port: 8080,
      verbose: false,
      iamAuth: undefined,
      endpoints: undefined,
      aws: { region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });

  it('refuses a PORT that is no port number, naming it', () => {
    expect(() => loadLocalConfig({ PORT: '80x' })).toThrow('PORT must be a port number, got "80x"');
    expect(loadLocalConfig({ PORT: '0' }).port).toBe(0);
  });

  it('takes the key to accept from the environment under CRONPLANE_IAM_AUTH=1, and needs one', () => {
    expect(() => loadLocalConfig({ CRONPLANE_IAM_AUTH: '1' })).toThrow(/needs AWS_ACCESS_KEY_ID/);
    const iam = loadLocalConfig({
      CRONPLANE_IAM_AUTH: '1',
      AWS_ACCESS_KEY_ID: 'AKID',
      AWS_SECRET_ACCESS_KEY: 's',
      AWS_DEFAULT_REGION: 'eu-west-1',
    }).iamAuth;
    expect(iam).toEqual({ keys: { AKID: 's' }, region: 'eu-west-1' });
  });

  it('passes every given AWS endpoint on when AWS_ENDPOINT_URL is set', () => {
    const env = { AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_SQS: 'http://q', AWS_ENDPOINT_URL_S3: '' };
    expect(loadLocalConfig(env).endpoints).toEqual({
      AWS_ENDPOINT_URL: 'http://a',
      AWS_ENDPOINT_URL_SQS: 'http://q',
    });
    expect(loadLocalConfig({ AWS_ENDPOINT_URL_SQS: 'http://q' }).endpoints).toBeUndefined();
  });
});
