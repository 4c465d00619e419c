import bodyParser from 'body-parser';
import typeis from 'type-is';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerError, invalidRequest } from '../errors.js';
import { MAX_FORM_PARAMETERS, TooManyParametersError, parseFormText, type FormFields } from './form-text.js';

/** Form bodies above this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 64 * 1024;

export const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * body-parser's form reader (what express.urlencoded is), used directly for every body the plain reader below does
 * not take: charsets, Content-Encoding (gzip, deflate, br) and chunked uploads, by a mature parser, without Express
 * on the token endpoint's path.
 */
const parseForm = bodyParser.urlencoded({ extended: false, limit: MAX_BODY_BYTES, parameterLimit: MAX_FORM_PARAMETERS });

export type { FormFields } from './form-text.js';

const TOO_LARGE = () =>
  new BrokerError('request_too_large', {
    oauthError: 'invalid_request',
    status: 413,
    description: 'The request body is too large (at most 64 KiB and 32 parameters).',
  });
const INCOMPLETE = () => invalidRequest('invalid_request', 'The request body was incomplete.');

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
  if (type === 'entity.too.large' || type === 'parameters.too.many') return TOO_LARGE();
  if (type === 'request.aborted' || type === 'request.size.invalid') return INCOMPLETE();
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
  const length = plainFormLength(req);
  if (length !== undefined) {
    readPlainForm(req, length, done);
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

/**
 * The Content-Length of the body every RFC 8693 client sends: exactly the form type (so UTF-8), not compressed, not
 * chunked, within the size limit. Undefined for any other body, which body-parser reads.
 */
function plainFormLength(req: IncomingMessage): number | undefined {
  const { headers } = req;
  if (headers['content-type'] !== FORM_TYPE || headers['transfer-encoding'] !== undefined) return undefined;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return undefined;
  const declared = headers['content-length'];
  if (declared === undefined || !/^\d{1,6}$/.test(declared)) return undefined;
  const length = Number(declared);
  return length <= MAX_BODY_BYTES ? length : undefined;
}

/** A UTF-8 byte order mark: iconv-lite (body-parser's decoder) drops it, so the plain reader does too. */
function withoutBom(body: Buffer): Buffer {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
}

/**
 * Reads a plain form body of a known length and parses it with parseFormText: what body-parser does for such a body
 * (its refusals included: a body cut short is incomplete, more than 32 parameters is 413), without its stream
 * plumbing, charset lookup and general-purpose query parser on the path of every exchange.
 */
function readPlainForm(req: IncomingMessage, length: number, done: (error: unknown, form: FormFields) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const settle = (error: unknown, form: FormFields): void => {
    if (settled) return;
    settled = true;
    req.off('data', onData).off('end', onEnd).off('aborted', onAborted).off('error', onError);
    done(error, form);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    chunks.push(chunk);
  };
  const onEnd = (): void => {
    // Node's parser delivers at most Content-Length bytes; fewer means the client stopped short.
    if (received !== length) {
      settle(INCOMPLETE(), {});
      return;
    }
    const body = withoutBom(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
    let form: FormFields;
    try {
      form = parseFormText(body.toString('utf8'));
    } catch (error) {
      settle(error instanceof TooManyParametersError ? TOO_LARGE() : error, {});
      return;
    }
    settle(undefined, form);
  };
  const onAborted = (): void => settle(INCOMPLETE(), {});
  // A socket error mid-body: nobody is left to answer, but the record still ends once.
  const onError = (): void => settle(INCOMPLETE(), {});
  req.on('data', onData).on('end', onEnd).on('aborted', onAborted).on('error', onError);
}
