/** Lambda entry point ticked by EventBridge every minute: one scheduler pass under the lease. */
import type { Context as LambdaContext } from 'aws-lambda';
import { createContext } from '../../shared/context.ts';
import { tick } from '../../shared/scheduler/tick.ts';

const ctx = createContext();

export const handler = async (_event: unknown, lambda: LambdaContext) => {
  const report = await tick(ctx, `tick:${lambda.awsRequestId}`);
  console.log(JSON.stringify({ msg: 'tick', ...report }));
  return report;
};
