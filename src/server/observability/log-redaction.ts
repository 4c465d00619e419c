/**
 * Field names censored in log lines. Nothing the broker logs carries a credential under these names: this is the
 * belt and braces in case a line ever did.
 */
export const REDACTED_FIELDS: readonly string[] = ['token', 'subject_token', 'access_token', 'authorization'];

/** The root logger's paths: the fields at the top of a line, and one level down in any object it carries. */
export const REDACT_PATHS: readonly string[] = [...REDACTED_FIELDS, '*.authorization', '*.token'];

export const REDACTION_CENSOR = '[redacted]';
