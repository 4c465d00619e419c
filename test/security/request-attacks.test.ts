import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { auditCount, expectMinted, expectRefusal, fromFetch } from './refusal.js';

/*
 * Hostile requests to POST /token that carry a valid subject token, so that only the request's own shape can be
 * what refuses it: repeated parameters, broken encodings, compressed bodies, credentials in two places, and
 * scopes that try to widen the grant. Every refusal is exact and leaves no audit record and no cache entry.
 * Already covered elsewhere (see docs/security.md): grant_type twice and malformed percent-encodings (status
 * class only) in test/http/token-endpoint.test.ts; 413 for 64 KiB and 33 parameters in test/http/openapi.test.ts;
 * parseExchangeRequest's refusals in test/http/parse-exchange-request.test.ts.
 */

const GRANT = encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE);
const JWT_TYPE = encodeURIComponent(TOKEN_TYPE_JWT);
const FORM = 'application/x-www-form-urlencoded';

const DESCRIPTIONS = {
  grantRequired: 'The "grant_type" parameter is required.',
  once: (name: string) =>
    name === 'resource' ? 'The "resource" parameter must be given at most once: exchange once per API.' : `The "${name}" parameter must be given at most once.`,
  undecodable: 'The request body could not be decoded as a form.',
  mediaType: 'The request body must be application/x-www-form-urlencoded (RFC 8693).',
  notJws: 'The subject token is not a compact JWS (three base64url segments separated by dots).',
  unsupportedGrant: `Only ${GRANT_TYPE_TOKEN_EXCHANGE} is supported.`,
  tooLarge: 'The request body is too large (at most 64 KiB and 32 parameters).',
  notGranted: (policies: string) => `The requested scope includes policies this workload is not granted: ${policies}.`,
} as const;

describe('security: hostile requests to POST /token', { timeout: 60_000 }, () => {
  let h: Harness;
  let server: Server;
  let base: string;
  /** A valid subject token: every refusal below is about the request, never the token. */
  let subject: string;
  let form: string;

  const raw = (body: string, contentType = FORM) => () => h.http.post('/token').set('Content-Type', contentType).send(body);
  const invalid = (description: string) => ({ status: 400, error: 'invalid_request', reason: 'invalid_request', description }) as const;

  before(async () => {
    h = await startHarness();
    await h.broker.warmUp();
    subject = await h.issuer.projectedToken();
    form = `grant_type=${GRANT}&subject_token_type=${JWT_TYPE}&subject_token=${subject}`;
    // supertest re-serializes Buffers it is given with a form type; compressed bodies go through fetch.
    server = createServer(h.broker.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h.close();
  });

  it('baseline: the same form, sent once, is minted', async () => {
    await expectMinted(h, raw(form));
  });

  describe('repeated parameters', () => {
    const values: Record<string, string> = {
      grant_type: GRANT,
      subject_token_type: JWT_TYPE,
      audience: 'tyk',
      scope: 'status-read',
      requested_token_type: JWT_TYPE,
      resource: 'https%3A%2F%2Fapi.example',
      actor_token: 'x',
      actor_token_type: JWT_TYPE,
    };
    for (const [name, value] of Object.entries(values)) {
      it(`${name} twice (the same value both times): invalid_request`, async () => {
        await expectRefusal(h, raw(`${form}&${name}=${value}&${name}=${value}`), invalid(DESCRIPTIONS.once(name)));
      });
    }

    it('subject_token twice, the second one someone else\'s: invalid_request, neither is used', async () => {
      const other = await h.issuer.projectedToken({ namespace: 'payments-other' });
      await expectRefusal(h, raw(`${form}&subject_token=${other}`), invalid(DESCRIPTIONS.once('subject_token')));
    });

    it('the subject token both in the form and in Authorization: Bearer: invalid_request', async () => {
      await expectRefusal(
        h,
        () => h.http.post('/token').set('Authorization', `Bearer ${subject}`).set('Content-Type', FORM).send(form),
        invalid('Send the subject token once: either the "subject_token" parameter or Authorization: Bearer.'),
      );
    });
  });

  describe('malformed form encodings', () => {
    const cases: ReadonlyArray<readonly [string, () => string, ReturnType<typeof invalid> | { status: 400; error: string; reason: 'malformed_token' | 'unsupported_token_type' | 'unsupported_grant_type'; description: string }]> = [
      ['a lone "%"', () => '%', invalid(DESCRIPTIONS.grantRequired)],
      ['only separators and broken escapes', () => '=%%%&&==', invalid(DESCRIPTIONS.grantRequired)],
      ['a truncated UTF-8 escape as grant_type', () => 'grant_type=%E0%A4%A', { status: 400, error: 'unsupported_grant_type', reason: 'unsupported_grant_type', description: DESCRIPTIONS.unsupportedGrant }],
      ['an invalid escape inside the subject token', () => `${form}%ZZ`, { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.notJws }],
      ['a NUL byte after the subject token', () => `${form}%00`, { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.notJws }],
      ['"+" (a space once decoded) inside the subject token', () => form.replace(/\.([^.]*)$/, '.+$1'), { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.notJws }],
      [
        'a subject_token_type of bytes that are not UTF-8',
        () => `grant_type=${GRANT}&subject_token_type=%FF%FE&subject_token=${subject}`,
        {
          status: 400,
          error: 'invalid_request',
          reason: 'unsupported_token_type',
          description: 'subject_token_type must be one of urn:ietf:params:oauth:token-type:jwt, urn:ietf:params:oauth:token-type:id_token.',
        },
      ],
      ['bracket syntax (grant_type[]) is a different, unknown parameter', () => form.replace('grant_type=', 'grant_type[]='), invalid(DESCRIPTIONS.grantRequired)],
      ['parameter names are case-sensitive (GRANT_TYPE)', () => form.replace('grant_type=', 'GRANT_TYPE='), invalid(DESCRIPTIONS.grantRequired)],
    ];
    for (const [name, body, expected] of cases) {
      it(`${name}: ${expected.reason}`, async () => {
        await expectRefusal(h, raw(body()), expected);
      });
    }

    it('a body in UTF-16: invalid_request', async () => {
      await expectRefusal(h, raw(form, `${FORM}; charset=utf-16`), invalid(DESCRIPTIONS.undecodable));
    });

    for (const type of ['multipart/form-data; boundary=x', 'text/plain', 'application/x-www-form-urlencoded-evil', 'application/xml']) {
      it(`Content-Type ${type}: unsupported_media_type`, async () => {
        await expectRefusal(h, raw(form, type), { status: 400, error: 'invalid_request', reason: 'unsupported_media_type', description: DESCRIPTIONS.mediaType });
      });
    }

    it('"__proto__" parameters are ordinary unknown names: no pollution, the exchange proceeds', async () => {
      const polluting = `__proto__=x&__proto__[actor_token]=x&constructor[prototype][actor_token]=x&${form.replace(subject, await h.issuer.projectedToken({ namespace: 'payments-proto' }))}`;
      await expectMinted(h, raw(polluting));
      assert.equal(({} as Record<string, unknown>).actor_token, undefined);
    });
  });

  describe('compressed bodies', () => {
    const post = (encoding: string, body: Buffer) => async () =>
      fromFetch(await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': FORM, 'content-encoding': encoding }, body }));

    for (const encoding of ['gzip', 'deflate', 'br']) {
      it(`Content-Encoding: ${encoding} with a body that does not decompress: invalid_request, not a 500`, async () => {
        await expectRefusal(h, post(encoding, Buffer.from('definitely not compressed')), invalid(DESCRIPTIONS.undecodable));
      });
    }

    it('a gzip bomb (2 MB of form from 2 KB): 413 request_too_large once 64 KiB are inflated', async () => {
      const bomb = gzipSync(`a=${'x'.repeat(2_000_000)}`);
      assert.ok(bomb.length < 4096);
      await expectRefusal(h, post('gzip', bomb), { status: 413, error: 'invalid_request', reason: 'request_too_large', description: DESCRIPTIONS.tooLarge });
    });

    it('an unknown Content-Encoding: invalid_request', async () => {
      await expectRefusal(h, post('compress', Buffer.from(form)), invalid(DESCRIPTIONS.undecodable));
    });

    it('a well-formed gzip, deflate or br form is read like a plain one', async () => {
      let i = 0;
      for (const [encoding, compress] of [['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync]] as const) {
        const token = await h.issuer.projectedToken({ podUid: `compressed-${i++}` });
        await expectMinted(h, post(encoding, compress(form.replace(subject, token))));
      }
    });
  });

  // The plain form reader (src/server/http/form-body.ts) takes every body of exactly the form type with a
  // Content-Length; body-parser takes the rest. Both must read a body the same way and refuse it the same way.
  describe('the plain form reader and body-parser agree', () => {
    const send = (body: string | Buffer, headers: Record<string, string> = {}) => async () =>
      fromFetch(await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': FORM, ...headers }, body }));
    let n = 0;
    const freshForm = async () => form.replace(subject, await h.issuer.projectedToken({ podUid: `plain-reader-${n++}` }));

    it('a UTF-8 byte order mark before the form is dropped, as body-parser drops it: minted', async () => {
      await expectMinted(h, send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(await freshForm())])));
    });

    it('the same form with a charset parameter (body-parser\'s path) and without (the plain reader\'s) is minted both ways', async () => {
      await expectMinted(h, send(await freshForm(), { 'content-type': `${FORM}; charset=utf-8` }));
      await expectMinted(h, send(await freshForm()));
    });

    it('parameter names percent-encoded, and a bracketed parameter the broker does not know, read as qs reads them', async () => {
      const encodedNames = (await freshForm()).replace('subject_token=', 'subject%5Ftoken=').replace('grant_type=', 'grant%5ftype=');
      await expectMinted(h, send(encodedNames));
      await expectMinted(h, send(`${await freshForm()}&unknown%5Bx%5D=1&other[]=2`));
    });

    it('33 parameters on either path: 413 request_too_large, nothing decoded', async () => {
      const many = `${form}${'&x=1'.repeat(30)}`;
      for (const headers of [{}, { 'content-type': `${FORM}; charset=utf-8` }] as Record<string, string>[]) {
        await expectRefusal(h, send(many, headers), { status: 413, error: 'invalid_request', reason: 'request_too_large', description: DESCRIPTIONS.tooLarge });
      }
    });

    it('a body cut short of its Content-Length (the client half-closes): a bare 400 on either path, nothing minted', async () => {
      const before = auditCount(h);
      const port = Number(new URL(base).port);
      for (const contentType of [FORM, `${FORM}; charset=utf-8`]) {
        const answer = await new Promise<string>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.end(`POST /token HTTP/1.1\r\nHost: broker\r\nContent-Type: ${contentType}\r\nContent-Length: 500\r\n\r\n${form.slice(0, 40)}`);
          });
          let data = '';
          socket.setEncoding('latin1').on('data', (chunk: string) => (data += chunk));
          socket.on('close', () => resolve(data));
          socket.on('error', () => resolve(data));
        });
        assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/, contentType);
        assert.doesNotMatch(answer, /access_token/);
      }
      assert.equal(auditCount(h), before);
    });

    it('__proto__ as a parameter name changes nothing: the exchange reads its own parameters only', async () => {
      await expectMinted(h, send(`__proto__=x&${await freshForm()}&constructor=y`));
    });
  });

  describe('credentials in the Authorization header', () => {
    it('Basic credentials instead of a subject token: grant_type required (no client authentication exists)', async () => {
      await expectRefusal(h, () => h.http.post('/token').set('Authorization', 'Basic YWRtaW46YWRtaW4='), invalid(DESCRIPTIONS.grantRequired));
    });

    it('Bearer with two tokens: not a bearer credential at all', async () => {
      await expectRefusal(h, () => h.http.post('/token').set('Authorization', `Bearer ${subject} ${subject}`), invalid(DESCRIPTIONS.grantRequired));
    });

    it('Bearer with another grant in the form: unsupported_grant_type', async () => {
      await expectRefusal(h, () => h.http.post('/token').set('Authorization', `Bearer ${subject}`).set('Content-Type', FORM).send('grant_type=client_credentials'), {
        status: 400,
        error: 'unsupported_grant_type',
        reason: 'unsupported_grant_type',
        description: DESCRIPTIONS.unsupportedGrant,
      });
    });
  });

  describe('scope asking for more than granted (the grant: payments-read payments-write status-read)', () => {
    const scoped = (scope: string) => () =>
      h.http.post('/token').type('form').send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subject, scope });
    const notGranted = (policies: string) => ({ status: 400, error: 'invalid_target', reason: 'scope_not_granted', description: DESCRIPTIONS.notGranted(policies) }) as const;

    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ['a glob', '*', '*'],
      ['a glob inside a name', 'payments-*', 'payments-*'],
      ['a policy template', '{namespace}-admin', '{namespace}-admin'],
      ['a granted and an ungranted policy', 'payments-read payments-admin', 'payments-admin'],
      ['a tab instead of a space (one name, not two)', 'payments-read\tpayments-write', 'payments-read\tpayments-write'],
      ['a granted name with different case', 'Payments-Read', 'Payments-Read'],
      ['Object.prototype names', '__proto__ constructor toString', '__proto__ constructor toString'],
    ];
    for (const [name, scope, refused] of cases) {
      it(`${name}: scope_not_granted`, async () => {
        await expectRefusal(h, scoped(scope), notGranted(refused));
      });
    }

    it('a thousand ungranted names: refused, and the description quotes at most 300 characters of them', async () => {
      const names = Array.from({ length: 1000 }, (_, i) => `p${i}`);
      const res = await expectRefusal(h, scoped(names.join(' ')), {
        status: 400,
        error: 'invalid_target',
        reason: 'scope_not_granted',
        description: DESCRIPTIONS.notGranted(names.join(' ').slice(0, 300)),
      });
      assert.ok(String(res.body.error_description).length < 400);
    });

    it('a granted policy repeated is the same narrowed grant, not a wider one', async () => {
      const res = await expectMinted(h, scoped('status-read status-read'));
      assert.equal(res.body.scope, 'status-read');
    });
  });
});
