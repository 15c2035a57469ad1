/**
 * Who is calling: the identity a job change is recorded under (jobs-store `updatedBy`, `history`).
 *
 * The API takes it from API Gateway's IAM authorizer (`requestContext.identity.userArn`, else `caller`),
 * which has verified the SigV4 signature; without IAM auth (`-c iamAuth=false`, the local server) there is
 * no verified identity and changes are recorded as `anonymous`. The API runs each request `asCaller`, so
 * the jobs service records the identity without every route passing it along.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export const ANONYMOUS_CALLER = 'anonymous';

/** The part of API Gateway's `requestContext.identity` we use. */
export interface GatewayIdentity {
  readonly userArn?: string | null;
  readonly caller?: string | null;
}

/** The identity to record for a request: the IAM user/role ARN, else the caller id, else `anonymous`. */
export function callerOf(identity: GatewayIdentity | null | undefined): string {
  const arn = identity?.userArn?.trim();
  if (arn) return arn;
  const caller = identity?.caller?.trim();
  return caller || ANONYMOUS_CALLER;
}

const scope = new AsyncLocalStorage<string>();

/** Runs `fn` with `caller` as the identity the jobs service records. */
export function asCaller<T>(caller: string, fn: () => T): T {
  return scope.run(caller, fn);
}

/** The identity of the current request, `anonymous` outside one. */
export function currentCaller(): string {
  return scope.getStore() ?? ANONYMOUS_CALLER;
}
