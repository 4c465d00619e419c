import bodyParser from 'body-parser';
import typeis from 'type-is';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerError, invalidRequest } from '../errors.js';

/** Form bodies above this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 64 * 1024;

export const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * body-parser's form reader (what express.urlencoded is), used directly: limits, charsets and Content-Encoding
 * (gzip, deflate, br) of a mature parser, without Express on the token endpoint's path.
 */
const parseForm = bodyParser.urlencoded({ extended: false, limit: MAX_BODY_BYTES, parameterLimit: 32 });

/** A parsed form: parameter name to its value, or to the list of values of a repeated parameter. */
export type FormFields = Readonly<Record<string, unknown>>;

/** Body-parser failures carry a `type`; map them to precise client errors. */
export function bodyError(error: unknown): BrokerError | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  if (!('type' in error)) {
    // A compressed body that does not decompress: body-parser passes zlib's error on as an exposed 400 without a type.
    const { status, expose } = error as { status?: unknown; expose?: unknown };
    const clientError = typeof status === 'number' && status >= 400 && status < 500 && expose === true;
    return clientError ? invalidRequest('invalid_request', 'The request body could not be decoded as a form.') : undefined;
  }
  const type = String((error as { type: unknown }).type);
  if (type === 'entity.too.large' || type === 'parameters.too.many') {
    return new BrokerError('request_too_large', {
      oauthError: 'invalid_request',
      status: 413,
      description: 'The request body is too large (at most 64 KiB and 32 parameters).',
    });
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') return invalidRequest('invalid_request', 'The request body was incomplete.');
  return invalidRequest('invalid_request', 'The request body could not be decoded as a form.');
}

/**
 * Reads an RFC 8693 form body (or no body at all) and calls `done` once: with the fields, or with the error to
 * answer. Any other body is refused before it is buffered. An error that is not the client's (not a BrokerError)
 * is passed on as it is, for the caller to log and answer as server_error.
 */
export function readFormBody(req: IncomingMessage, res: ServerResponse, done: (error: unknown, form: FormFields) => void): void {
  const contentType = req.headers['content-type'];
  // type-is answers null without a body, false for a body of another type. fetch, Python requests and Node send a
  // bodiless POST (the curl-friendly Bearer form) as `Content-Length: 0` or an empty chunked body with no
  // Content-Type: that is no body, not a body of another type. The exact form type, what every client sends,
  // needs no media-type parsing.
  const noBody = contentType === undefined && (req.headers['content-length'] ?? '0') === '0';
  if (!noBody && contentType !== FORM_TYPE && typeis(req, [FORM_TYPE]) === false) {
    done(invalidRequest('unsupported_media_type', 'The request body must be application/x-www-form-urlencoded (RFC 8693).'), {});
    return;
  }
  parseForm(req, res, (error?: unknown) => {
    if (error !== undefined && error !== null) {
      done(bodyError(error) ?? error, {});
      return;
    }
    const body = (req as IncomingMessage & { body?: unknown }).body;
    done(undefined, body !== null && typeof body === 'object' ? (body as FormFields) : {});
  });
}
