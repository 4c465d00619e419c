import type { ResourceIndicator } from '../rules/resource-indicator.js';

/** An RFC 8693 token-exchange request after parsing, before any verification. */
export interface ExchangeRequest {
  readonly subjectToken: string;
  /** Requested audience of the minted token; undefined means the configured default. */
  readonly audience: string | undefined;
  /** Requested policy IDs (the `scope` parameter); undefined means everything the rules grant. */
  readonly scope: readonly string[] | undefined;
  /** The API the token is for (RFC 8707 `resource`); undefined means every API the policies open. */
  readonly resource: ResourceIndicator | undefined;
  readonly requestedTokenType: string | undefined;
}

/** A successful exchange, ready to serialize as an RFC 8693 response. */
export interface ExchangeResponse {
  readonly accessToken: string;
  readonly issuedTokenType: string;
  readonly expiresIn: number;
  readonly scope: string;
  /** The policies granted, in the order of `scope`. */
  readonly policies: readonly string[];
  readonly jti: string;
  readonly expiresAt: number;
  /** False when this request minted the token; true when it came from the cache or from a peer's mint. */
  readonly cached: boolean;
}
