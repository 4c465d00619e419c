/** An RFC 8693 token-exchange request after parsing, before any verification. */
export interface ExchangeRequest {
  readonly subjectToken: string;
  /** Requested audience of the minted token; undefined means the configured default. */
  readonly audience: string | undefined;
  /** Requested policy IDs (the `scope` parameter); undefined means everything the rules grant. */
  readonly scope: readonly string[] | undefined;
  readonly requestedTokenType: string | undefined;
}

/** A successful exchange, ready to serialize as an RFC 8693 response. */
export interface ExchangeResponse {
  readonly accessToken: string;
  readonly issuedTokenType: string;
  readonly expiresIn: number;
  readonly scope: string;
  readonly jti: string;
  readonly expiresAt: number;
  readonly cached: boolean;
}
