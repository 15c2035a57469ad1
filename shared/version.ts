/**
 * Cronplane's version, as the API (`/v1/`'s agent info, the OpenAPI document) and the agents (their member
 * record) report it. It is package.json's `version`; test/unit/shared/version.test.ts keeps the two equal.
 * A constant rather than a JSON import, so that the agent's bundle and the Lambda bundles carry no
 * package.json.
 */
export const VERSION = '0.1.0';
