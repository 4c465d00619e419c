import qs from 'qs';

/** A form body with more parameters than this is refused (413), as body-parser's parameterLimit does. */
export const MAX_FORM_PARAMETERS = 32;

/** A parsed form: parameter name to its value, or to the list of values of a repeated parameter. */
export type FormFields = Readonly<Record<string, unknown>>;

/** Thrown for a body over MAX_FORM_PARAMETERS; form-body.ts answers it as 413. */
export class TooManyParametersError extends Error {}

/**
 * qs as body-parser's urlencoded parser calls it with `extended: false` (body-parser 2.4 lib/types/urlencoded.js):
 * brackets are literal text, not nesting, and the same limits. Used for the bodies the plain splitter below leaves
 * to it, so every body parses exactly as it did when body-parser read them all.
 */
function parseLikeBodyParser(text: string, parameterCount: number): FormFields {
  return qs.parse(text, {
    allowPrototypes: true,
    arrayLimit: parameterCount,
    depth: 0,
    charset: 'utf-8',
    parameterLimit: MAX_FORM_PARAMETERS,
    strictDepth: true,
  });
}

/** qs's decoder: `+` is a space, then percent-decoding; text that does not decode is kept as it is. */
function decodeComponent(text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/** Brackets, raw or percent-encoded, are where qs's key syntax starts (qs decodes %5B and %5D before splitting). */
const BRACKETS = /[[\]]|%5[bd]/i;

/**
 * An application/x-www-form-urlencoded body (already decoded from UTF-8) to its fields, exactly as qs parses it
 * for body-parser (test/http/form-text.property.test.ts holds the two equal on random bodies): `+` and
 * percent-escapes decoded, a repeated name collecting its values in order, a part without `=` an empty value, empty
 * names and `__proto__` dropped. A body holding brackets is left to qs itself. The plain split is what every RFC
 * 8693 client sends, and costs a fraction of qs's general parse. Pure.
 */
export function parseFormText(text: string): FormFields {
  if (text.length === 0) return {};
  let parameterCount = 1;
  for (let at = text.indexOf('&'); at !== -1; at = text.indexOf('&', at + 1)) {
    if (++parameterCount > MAX_FORM_PARAMETERS) throw new TooManyParametersError();
  }
  if (BRACKETS.test(text)) return parseLikeBodyParser(text, parameterCount);
  const fields: Record<string, string | string[]> = {};
  for (const part of text.split('&')) {
    const equals = part.indexOf('=');
    const name = decodeComponent(equals === -1 ? part : part.slice(0, equals));
    // qs drops a parameter without a name, and never lets one named __proto__ reach the object's prototype.
    if (name === '' || name === '__proto__') continue;
    const value = equals === -1 ? '' : decodeComponent(part.slice(equals + 1));
    const existing = Object.hasOwn(fields, name) ? fields[name] : undefined;
    fields[name] = existing === undefined ? value : typeof existing === 'string' ? [existing, value] : [...existing, value];
  }
  return fields;
}
