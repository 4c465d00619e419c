/**
 * What a credential written into a workflow looks like: shapes, never known values. Pure string functions.
 *
 * The patterns are deliberately conservative, because a linter that cries wolf gets switched off:
 * - a JWT is three base64url segments whose header starts `eyJ` (base64url of `{"`);
 * - a bearer token counts only when it follows `Authorization: Bearer` (or curl's --oauth2-bearer), is at least
 *   16 characters long and mixes letters and digits, so `Bearer $TOKEN`, `Bearer {{...}}` and `Bearer <token>`
 *   never match;
 * - a Tyk key is 24-64 letters and digits (the classic org id + 32 hex) or base64 of Tyk's `{"org":...}` JSON,
 *   mixing letters and digits, and counts only next to `x-tyk-authorization`, a bare `Authorization:` header,
 *   or a name (variable, flag, JSON field) that says key, token, secret or password.
 */

export type LiteralRuleId = 'literal-jwt' | 'literal-bearer-token' | 'literal-tyk-key';

/** One credential-shaped literal inside a string. */
export interface CredentialMatch {
  readonly ruleId: LiteralRuleId;
  /** Where the credential starts in the string. */
  readonly index: number;
  readonly length: number;
  /** Where it was found, for the message: "an Authorization header", "variable TYK_KEY", ... */
  readonly context: string;
}

const JWT = /(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const BEARER = /(?<![\w-])Authorization['"]?\s*:\s*['"]?\s*Bearer\s+([A-Za-z0-9\-._~+/]+=*)/gi;
const OAUTH2_BEARER = /--oauth2-bearer(?:\s+|=)['"]?([A-Za-z0-9\-._~+/]+=*)/g;
const X_TYK_AUTHORIZATION = /x-tyk-authorization['"]?\s*[:=]\s*['"]?([A-Za-z0-9+/_=-]+)/gi;
const BARE_AUTHORIZATION = /(?<![\w-])Authorization['"]?\s*:\s*['"]?([A-Za-z0-9+/_=-]+)/gi;
/** NAME=value, NAME: value, "name": "value", --flag=value, --flag value. */
const NAMED_VALUE = /(?<![\w$-])(?:--?)?['"]?([A-Za-z_][A-Za-z0-9_-]*)['"]?(?:\s*[:=]\s*|\s+(?=['"]?[A-Za-z0-9]))(['"]?)([A-Za-z0-9+/_-]+={0,2})\2/g;

const TYK_KEY_SHAPE = /^(?:[A-Za-z0-9]{24,64}|eyJ[A-Za-z0-9+/_-]{20,}={0,2})$/;

function mixesLettersAndDigits(value: string): boolean {
  return /[A-Za-z]/.test(value) && /[0-9]/.test(value);
}

/** True for a string shaped like a Tyk key: 24-64 alphanumerics, or Tyk's base64 JSON key, with letters and digits. */
export function isTykKeyShaped(value: string): boolean {
  return TYK_KEY_SHAPE.test(value) && mixesLettersAndDigits(value);
}

/** True for an opaque bearer token worth reporting (not a placeholder word). */
function isBearerTokenShaped(value: string): boolean {
  return value.length >= 16 && mixesLettersAndDigits(value);
}

/** The words of an identifier: `TYK_API_KEY`, `x-api-key` and `tykApiKey` all give tyk/api/key. */
function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

/** Last words that always name a credential. */
const CREDENTIAL_WORDS: ReadonlySet<string> = new Set([
  'token', 'secret', 'password', 'passwd', 'pwd', 'pass', 'passphrase', 'credential', 'credentials',
  'authorization', 'apikey', 'bearer',
]);

/**
 * Words that make a trailing "key" a credential. A bare `CACHE_KEY` or `S3_KEY` names data, not a secret;
 * `API_KEY`, `TYK_KEY` or `PRIVATE_KEY` do.
 */
const KEY_QUALIFIERS: ReadonlySet<string> = new Set([
  'api', 'access', 'secret', 'private', 'tyk', 'auth', 'gateway', 'client', 'signing', 'encryption', 'master',
  'session', 'admin', 'service', 'license', 'subscription',
]);

/**
 * Words that, anywhere in a name, make a key-shaped value a credential: `GATEWAY_AUTH`, `AUTH_HEADER_VALUE` or
 * `TOKEN_VALUE` holding 32 hex digits is a key written into the workflow. Alone ("auth: oidc") they are settings.
 */
const KEY_SHAPED_HINTS: ReadonlySet<string> = new Set([...CREDENTIAL_WORDS, 'auth', 'key']);

/**
 * True when a name (environment variable, header, parameter, flag) says it holds a credential: its last word is
 * token, secret, password, ..., or it ends in "key" qualified as an API/access/private/... key; or the value is
 * key-shaped and any word of the name is a credential word, "auth" or "key". `TOKEN_FILE`, `API_KEY_HEADER` or
 * `TOKEN_AUDIENCE` with a non-key value name something else.
 */
export function namesCredential(name: string, value: string): boolean {
  const words = nameWords(name);
  const last = words.at(-1);
  if (last === undefined) return false;
  if (CREDENTIAL_WORDS.has(last)) return true;
  const qualifier = words.at(-2);
  if (last === 'key' && qualifier !== undefined && KEY_QUALIFIERS.has(qualifier)) return true;
  return isTykKeyShaped(value.trim()) && words.some((word) => KEY_SHAPED_HINTS.has(word));
}

/**
 * True when a value is a literal that could be a credential, as opposed to a reference or a setting: not empty,
 * not an Argo expression (`{{...}}`), not a `$VAR`/`$(VAR)` reference, not a boolean or number, not a file path,
 * not a URL without user information, not a `<placeholder>`.
 */
export function isLiteralSecretValue(value: string): boolean {
  const text = value.trim();
  if (text === '' || text.includes('{{')) return false;
  if (/^(?:\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)$/.test(text)) return false;
  if (/^(?:true|false|yes|no|on|off|null|none|~)$/i.test(text)) return false;
  if (/^[+-]?\d+(?:\.\d+)?$/.test(text)) return false;
  if (text.startsWith('/') || text.startsWith('./') || text.startsWith('file:')) return false;
  if (/^https?:\/\/[^@/\s]+(?:[/?#]\S*)?$/i.test(text)) return false;
  return !/^<[^>]*>$/.test(text);
}

/** Every credential-shaped literal in free text (a script, an argument, a header line, a request body). */
export function findCredentialLiterals(text: string): CredentialMatch[] {
  const found: CredentialMatch[] = [];
  for (const match of text.matchAll(JWT)) {
    found.push({ ruleId: 'literal-jwt', index: match.index, length: match[0].length, context: 'a JWT' });
  }
  for (const pattern of [BEARER, OAUTH2_BEARER]) {
    for (const match of text.matchAll(pattern)) {
      const token = match[1] ?? '';
      if (!isBearerTokenShaped(token)) continue;
      const context = pattern === BEARER ? 'an Authorization: Bearer header' : 'curl --oauth2-bearer';
      found.push({ ruleId: 'literal-bearer-token', index: match.index + match[0].length - token.length, length: token.length, context });
    }
  }
  for (const [pattern, context] of [
    [X_TYK_AUTHORIZATION, 'an x-tyk-authorization header'],
    [BARE_AUTHORIZATION, 'an Authorization header'],
  ] as const) {
    for (const match of text.matchAll(pattern)) {
      const key = match[1] ?? '';
      if (!isTykKeyShaped(key)) continue;
      found.push({ ruleId: 'literal-tyk-key', index: match.index + match[0].length - key.length, length: key.length, context });
    }
  }
  // Candidates overlap (`export TYK_KEY=...` reads first as the flag-like pair export/TYK_KEY): after a rejected
  // candidate the search resumes one character later instead of after it.
  const named = new RegExp(NAMED_VALUE.source, 'g');
  for (let match = named.exec(text); match !== null; match = named.exec(text)) {
    const name = match[1] ?? '';
    const quote = match[2] ?? '';
    const key = match[3] ?? '';
    if (!isTykKeyShaped(key) || !namesCredential(name, key)) {
      named.lastIndex = match.index + 1;
      continue;
    }
    const index = match.index + match[0].length - key.length - quote.length;
    found.push({ ruleId: 'literal-tyk-key', index, length: key.length, context: `"${name}"` });
  }
  return withoutOverlaps(found);
}

const RULE_PRIORITY: Readonly<Record<LiteralRuleId, number>> = { 'literal-jwt': 0, 'literal-bearer-token': 1, 'literal-tyk-key': 2 };

/** One finding per credential: where matches overlap, the most specific (JWT, then bearer, then Tyk key) wins. */
function withoutOverlaps(matches: CredentialMatch[]): CredentialMatch[] {
  const ordered = [...matches].sort((a, b) => RULE_PRIORITY[a.ruleId] - RULE_PRIORITY[b.ruleId] || a.index - b.index);
  const kept: CredentialMatch[] = [];
  for (const match of ordered) {
    const overlaps = kept.some((other) => match.index < other.index + other.length && other.index < match.index + match.length);
    if (!overlaps) kept.push(match);
  }
  return kept.sort((a, b) => a.index - b.index);
}

/** A literal found in a named value (environment variable, HTTP header, parameter). */
export interface NamedValueFinding {
  readonly ruleId: LiteralRuleId | 'secret-named-literal';
  /** Position inside the value; the whole value for secret-named-literal. */
  readonly index: number;
  readonly length: number;
  readonly context: string;
  /** True when the value's own name made it a finding (`TYK_API_KEY=<key>`), rather than text inside the value. */
  readonly byName: boolean;
}

/**
 * Checks one named value. `separator` joins name and value the way they would appear on the wire (`: ` for a
 * header, `=` for a variable), so the free-text patterns see `Authorization: Bearer ...` or `TYK_KEY=...`; only
 * matches inside the value count. A credential-named literal with no recognised shape is secret-named-literal.
 */
export function checkNamedValue(name: string, value: string, separator: ': ' | '='): NamedValueFinding[] {
  const prefix = `${name}${separator}`;
  const inValue = findCredentialLiterals(`${prefix}${value}`)
    .filter((match) => match.index >= prefix.length)
    .map((match) => ({ ...match, index: match.index - prefix.length, byName: match.index === prefix.length && match.length === value.length && match.context === `"${name}"` }));
  if (inValue.length > 0) return inValue;
  if (!namesCredential(name, value) || !isLiteralSecretValue(value)) return [];
  return [{ ruleId: 'secret-named-literal', index: 0, length: value.length, context: `"${name}"`, byName: true }];
}
