/**
 * multipart/form-data bodies, for the one route that takes them (`POST /v1/restore`, as
 * `curl -F file=@jobs.json` sends it), parsed by busboy (@fastify/busboy).
 *
 * Not @middy/http-multipart-body-parser, although it wraps the same busboy: it first tests Content-Type
 * against a narrow pattern (`boundary=[a-zA-Z0-9-]{1,70}`, unquoted) and answers 415 to valid forms, e.g.
 * the quoted boundary .NET's HttpClient sends or the `_` in Apache HttpClient's (middyjs/middy#1349 and
 * #1364 were earlier cases of the same). busboy reads any boundary RFC 2046 allows.
 *
 * API Gateway delivers the body base64-encoded (`isBase64Encoded`) when multipart/form-data is one of its
 * binary media types (infra/lib/api.ts), as text otherwise; both are read.
 */
import busboyModule, { type Busboy } from '@fastify/busboy';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ValidationError } from '../../shared/errors.ts';

/** The largest field or file taken: API Gateway's own limit on a request. */
const MAX_BYTES = 10 * 1024 * 1024;

/** The fields of a parsed multipart/form-data body; each field's values in the order sent. */
export class MultipartForm {
  constructor(readonly fields: ReadonlyMap<string, readonly string[]>) {}

  /**
   * The text of field `name`, whether sent as a file (`-F name=@file`) or a plain field (`-F name=<file`);
   * undefined when absent; all its values when it came more than once.
   */
  text(name: string): string | readonly string[] | undefined {
    const values = this.fields.get(name);
    if (!values) return undefined;
    return values.length === 1 ? values[0] : values;
  }
}

const MULTIPART = /^multipart\/form-data\s*(;|$)/i;

function parse(event: APIGatewayProxyEvent, contentType: string): Promise<MultipartForm> {
  const fields = new Map<string, string[]>();
  const add = (name: string, value: string) => fields.set(name, [...(fields.get(name) ?? []), value]);
  const tooLarge = (name: string) => new ValidationError(name, `must be at most ${MAX_BYTES} bytes`);
  return new Promise((resolve, reject) => {
    let parser: Busboy;
    try {
      parser = busboyModule.Busboy({
        headers: { 'content-type': contentType },
        limits: { fieldSize: MAX_BYTES, fileSize: MAX_BYTES },
      });
    } catch (error) {
      // No or a malformed boundary parameter.
      reject(
        new ValidationError(
          'body',
          `must be multipart/form-data with a boundary (${(error as Error).message})`,
        ),
      );
      return;
    }
    const pending: Array<Promise<void>> = [];
    parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
      if (valueTruncated) reject(tooLarge(name));
      else add(name, value);
    });
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      // A body cut inside a file part ends the file stream with an error: without a listener that error is
      // uncaught and ends the process (the whole local stack; a 502 on Lambda).
      stream.on('error', (error: Error) => {
        reject(new ValidationError(name, `must be a complete multipart/form-data part (${error.message})`));
      });
      pending.push(
        new Promise<void>((done) =>
          stream.on('end', () => {
            if (stream.truncated) reject(tooLarge(name));
            else add(name, Buffer.concat(chunks).toString('utf8'));
            done();
          }),
        ),
      );
    });
    parser.on('error', (error) => {
      reject(new ValidationError('body', `must be valid multipart/form-data (${(error as Error).message})`));
    });
    parser.on('finish', () => {
      void Promise.all(pending).then(() => resolve(new MultipartForm(fields)));
    });
    parser.end(Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8'));
  });
}

/**
 * Parses the multipart/form-data body of a request whose path matches into a MultipartForm (in place of
 * `event.body`); any other request is left alone, its body goes on to the JSON parser.
 */
export function multipartBodyOn(paths: RegExp): MiddlewareObj<APIGatewayProxyEvent> {
  return {
    before: async ({ event }) => {
      const contentType = event.headers?.['content-type'] ?? '';
      if (!paths.test(event.path) || !MULTIPART.test(contentType)) return;
      (event as { body: unknown }).body = event.body
        ? await parse(event, contentType)
        : new MultipartForm(new Map()); // no body: no fields, and the route names the one it needs
    },
  };
}
