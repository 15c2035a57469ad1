/**
 * The local stack's configuration (`npm start`, and the stacks the tests and the bench start), parsed once
 * from the environment; an invalid value fails with the variable's name. The stack's store settings are
 * the Lambda functions' (shared/config.ts): local/stack.ts builds that environment for the emulators.
 */
import { z } from 'zod';
import { localStackFile } from '../agent/config.ts';
import type { Env } from '../shared/aws/clients.ts';
import type { IamAuth } from './sigv4-verify.ts';

const schema = z.object({
  /** The API's port on 127.0.0.1 (0: any free one). */
  PORT: z.string().optional(),
  /** `1`: every log line of the stack on stderr. */
  CRONPLANE_VERBOSE: z.string().optional(),
  /** `1`: the API takes only calls signed with the key below, as the deployed API does with IAM auth. */
  CRONPLANE_IAM_AUTH: z.string().optional(),
  AWS_REGION: z.string().optional(),
  AWS_DEFAULT_REGION: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  /** Set: use the emulators (or AWS) there instead of starting DynamoDB Local and moto. */
  AWS_ENDPOINT_URL: z.string().optional(),
});

export interface LocalConfig {
  readonly port: number;
  readonly verbose: boolean;
  /** CRONPLANE_IAM_AUTH=1: the key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) the API accepts. */
  readonly iamAuth: IamAuth | undefined;
  /** Where the stack tells agents started in this checkout how to join it (agent/config.ts: the agents read it). */
  readonly stackFile: string;
  /** The AWS settings the stack's clients and emulators get (emulators take any key: `test` by default). */
  readonly aws: { readonly region: string; readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * AWS_ENDPOINT_URL and every AWS_ENDPOINT_URL_<SERVICE> given, when AWS_ENDPOINT_URL is set (the stack
   * then starts no emulators); undefined otherwise.
   */
  readonly endpoints: Readonly<Record<string, string>> | undefined;
}

/** A setting `npm start` cannot work with; the message names the variable and the way out. */
export class LocalConfigError extends Error {}

export function loadLocalConfig(env: Env = process.env): LocalConfig {
  const e = schema.parse(env);
  const port = e.PORT ? Number(e.PORT) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new LocalConfigError(`PORT must be a port number, got "${e.PORT}"`);
  const region = e.AWS_REGION || e.AWS_DEFAULT_REGION || 'us-east-1';
  let iamAuth: IamAuth | undefined;
  if (e.CRONPLANE_IAM_AUTH === '1') {
    const id = e.AWS_ACCESS_KEY_ID;
    const secret = e.AWS_SECRET_ACCESS_KEY;
    if (!id || !secret)
      throw new LocalConfigError(
        'CRONPLANE_IAM_AUTH=1 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the key to accept',
      );
    iamAuth = { keys: { [id]: secret }, region };
  }
  const endpoints = e.AWS_ENDPOINT_URL
    ? Object.fromEntries(
        Object.entries(env).filter(
          (entry): entry is [string, string] => entry[0].startsWith('AWS_ENDPOINT_URL') && !!entry[1],
        ),
      )
    : undefined;
  return {
    port,
    verbose: e.CRONPLANE_VERBOSE === '1',
    iamAuth,
    stackFile: localStackFile(env),
    aws: {
      region,
      accessKeyId: e.AWS_ACCESS_KEY_ID || 'test',
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY || 'test',
    },
    endpoints,
  };
}
