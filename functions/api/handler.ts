/** Lambda entry point behind API Gateway (REST, proxy integration). */
import { createContext } from '../../shared/context.ts';
import { createApiHandler } from './app.ts';

export const handler = createApiHandler(createContext());
