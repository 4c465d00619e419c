import { invalidTarget } from '../errors.js';

/** Longest `resource` accepted: far above any gateway URL, far below the form's limit. */
export const MAX_RESOURCE_LENGTH = 2048;

/** An RFC 8707 resource indicator, parsed: the origin (lower-case scheme and host, default port dropped) and the path. */
export interface ResourceIndicator {
  /** `https://gateway.example.com`, as URL.origin writes it. */
  readonly origin: string;
  /** The path as sent, which is also its normal form (anything else is refused). */
  readonly path: string;
}

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** scheme "://" authority, then the rest, as RFC 3986 appendix B splits a URI. */
const HIERARCHICAL_URI = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/;

function malformed(why: string) {
  return invalidTarget('malformed_resource', `The "resource" parameter ${why}.`);
}

/**
 * Parses the `resource` parameter (RFC 8707 section 2): an absolute URI without a fragment. On top of the RFC,
 * it must be an http(s) URL without user name, password or query, written in normal form: no dot segments and no
 * percent-encoded ".", "/" or "\\", because the gateway and the broker must not disagree on which path it names.
 * Every refusal is invalid_target (RFC 8707: "invalid, missing, unknown, or malformed"). The description never
 * repeats the value. Pure.
 */
export function parseResourceIndicator(text: string): ResourceIndicator {
  if (text === '') throw malformed('is empty');
  if (text.length > MAX_RESOURCE_LENGTH) throw malformed(`is longer than ${MAX_RESOURCE_LENGTH} characters`);
  // Control characters, spaces and backslashes: WHATWG URL parsing would drop or rewrite them silently.
  if (/[\u0000-\u0020\u007f-\u009f\\]/.test(text)) throw malformed('contains spaces, control characters or backslashes');
  if (!ABSOLUTE_URI.test(text)) throw malformed('must be an absolute URI, such as https://gateway.example.com/orders/');
  if (text.includes('#')) throw malformed('must not have a fragment (RFC 8707)');
  const parts = HIERARCHICAL_URI.exec(text);
  const scheme = parts?.[1]?.toLowerCase();
  if (parts === null || (scheme !== 'https' && scheme !== 'http')) {
    throw invalidTarget('unknown_resource', 'The "resource" parameter names no API this broker issues tokens for: only http and https URLs of the gateway are served.');
  }
  const authority = parts[2] ?? '';
  const rawPath = parts[3] ?? '';
  if (authority.includes('@')) throw malformed('must not carry a user name or password');
  // URL parsing would decode "%2e" and map full-width letters in a host: the host must be what it will be compared as.
  if (/[^\x21-\x7e]|%/.test(authority)) throw malformed('must write its host in ASCII, without percent-encoding (IDNA hosts as punycode)');
  if (text.includes('?')) throw malformed('must not have a query: a token is narrowed to an API by its path alone');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw malformed('is not a valid URL');
  }
  if (url.hostname === '') throw malformed('has no host');
  const path = rawPath === '' ? '/' : rawPath;
  if (/%2e|%2f|%5c/i.test(path) || path.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw malformed('must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\"');
  }
  // Whatever else URL parsing would rewrite (say, non-ASCII characters) is not normal form either.
  if (url.pathname !== path) throw malformed('must be in normal form: percent-encode non-ASCII characters as RFC 3986 says');
  return { origin: url.origin, path };
}
