/** What a route handler (routes.ts, restore.ts) gets and returns, whatever carried the request. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** What stands before the API's paths in the URL called (the stage on API Gateway; empty locally). */
  readonly basePath?: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}
