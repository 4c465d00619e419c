/**
 * The bench's floor for a miss: node:http doing only what a first exchange cannot avoid, one RS256 verification of
 * the subject token and one ES256 signature of the access token, with node:crypto's one-shot calls and no framework,
 * no rules, no cache, no logging. What the broker spends per miss beyond this server's CPU per request is its own
 * work (issue 18 states its targets as that ratio).
 *
 * With `FLOOR_LOG_LINES=1` (the `floor+log` scenario) it also writes what the broker owes for every token it issues
 * and no design can drop: its exchange log line and its audit line, with pino configured as `serve` configures it,
 * each naming both tokens by SHA-256. The floor plus those two lines is what is left when everything else a miss
 * does (rules, claims, cache, metrics, the HTTP framing) costs nothing.
 *
 * Run as a child process by bench/run.ts: `node floor-app.js PORT JWKS_URL KEY_PEM_FILE`; prints "listening PORT".
 */
import { createPrivateKey, createPublicKey, hash, randomUUID, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import { createTurnBatchedDestination } from '../src/server/observability/log-destination.js';

const [portArg, jwksUrl, keyFile] = process.argv.slice(2);
if (jwksUrl === undefined || keyFile === undefined) throw new Error('usage: floor-app PORT JWKS_URL KEY_PEM_FILE');

const jwks = (await (await fetch(jwksUrl)).json()) as { keys: (JsonWebKey & { kid?: string })[] };
const verifyKeys = new Map<string, KeyObject>(jwks.keys.map((jwk) => [jwk.kid ?? '', createPublicKey({ key: jwk, format: 'jwk' })]));
const signingKey = createPrivateKey(readFileSync(keyFile, 'utf8'));
const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'floor', typ: 'JWT' })).toString('base64url');
// As src/tools/cli/serve.ts builds the broker's logger (its redaction aside: the broker's exchange lines keep only
// top-level paths, which pino compiles into the line's serializer).
const logger: Logger | undefined =
  process.env.FLOOR_LOG_LINES === '1'
    ? pino({ level: 'info', base: { service: 'token-broker' }, timestamp: pino.stdTimeFunctions.isoTime }, createTurnBatchedDestination(process.stdout.fd))
    : undefined;

function refuse(response: ServerResponse, status: number): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
}

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    try {
      answer(Buffer.concat(chunks), response);
    } catch {
      refuse(response, 400);
    }
  });
});

/** Verify, sign, answer: the two signatures and the least work around them. */
function answer(form: Buffer, response: ServerResponse): void {
  const token = new URLSearchParams(form.toString('latin1')).get('subject_token') ?? '';
  const [encodedHeader = '', payload = '', signature = ''] = token.split('.');
  const kid = (JSON.parse(Buffer.from(encodedHeader, 'base64url').toString()) as { kid?: string }).kid ?? '';
  const key = verifyKeys.get(kid);
  if (key === undefined || !verify('sha256', Buffer.from(`${encodedHeader}.${payload}`), key, Buffer.from(signature, 'base64url'))) {
    refuse(response, 400);
    return;
  }
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string };
  const now = Math.floor(Date.now() / 1000);
  const jti = randomUUID();
  const body = Buffer.from(JSON.stringify({ iss: 'https://token-broker.bench', sub: claims.sub, aud: 'tyk', iat: now, exp: now + 600, jti })).toString('base64url');
  const input = `${header}.${body}`;
  const accessToken = `${input}.${sign('sha256', Buffer.from(input), { key: signingKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  if (logger !== undefined) logIssued(logger, { subject: claims.sub, jti, expiresAt: now + 600, subjectToken: token, accessToken });
  response
    .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify({ access_token: accessToken, issued_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_type: 'Bearer', expires_in: 600 }));
}

/** The broker's two lines for an issued token (src/server/observability/exchange-log.ts), their fields filled in. */
function logIssued(lines: Logger, issued: { subject: string | undefined; jti: string; expiresAt: number; subjectToken: string; accessToken: string }): void {
  const subjectTokenSha256 = hash('sha256', issued.subjectToken, 'base64url');
  const accessTokenSha256 = hash('sha256', issued.accessToken, 'base64url');
  const policies = ['payments-read'];
  lines.info(
    { requestId: randomUUID(), outcome: 'issued', reason: 'ok', issuer: 'bench', namespace: 'payments', serviceAccount: 'argo-runner', pod: 'floor', policies, jti: issued.jti, expiresAt: issued.expiresAt, durationMs: 0.5, subjectTokenSha256 },
    'exchange succeeded',
  );
  lines.info(
    { audit: true, event: 'token_issued', requestId: randomUUID(), jti: issued.jti, subject: issued.subject, issuer: 'bench', namespace: 'payments', serviceAccount: 'argo-runner', pod: 'floor', policies, matchedRules: ['payments'], expiresAt: issued.expiresAt, accessTokenSha256, subjectTokenSha256 },
    'token issued',
  );
}

server.listen(Number(portArg ?? '0'), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address !== null ? address.port : portArg}`);
});
process.once('SIGTERM', () => server.close(() => (process.exitCode = 0)));
