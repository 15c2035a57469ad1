/** Lambda entry point behind API Gateway (REST, proxy integration). */
import { createContext } from '../../shared/context.ts';
import { SERVICES } from '../../shared/metrics/metrics.ts';
import { createObservability } from '../observability.ts';
import { createApiHandler } from './app.ts';

const ctx = createContext();
// Structured logs for the 5XX causes; the API records no metrics (API Gateway has its own).
const { logger } = createObservability(SERVICES.api, ctx.config, false);

export const handler = createApiHandler(ctx, {
  logError: (error) => logger.error('request failed', error instanceof Error ? error : String(error)),
});
