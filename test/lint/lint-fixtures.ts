import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lintText, type FileReport, type LintTextOptions } from '../../src/tools/lint/lint-text.js';

/**
 * Shared test data for the linter: where the fixtures are, the fake credentials written into them (shapes only:
 * none was ever valid), and a helper that lints a fixture the way the CLI does.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/argo-lint/', import.meta.url));

/** A JWT shaped like one the broker mints (RS256 header, Tyk claims), signed by nobody. */
export const FIXTURE_JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6IjhhN2IwZjNjIiwidHlwIjoiSldUIn0.eyJhdWQiOlsidHlrIl0sImV4cCI6MTc2NzIyNjIwMCwiaWF0IjoxNzY3MjI1NjAwLCJpc3MiOiJodHRwczovL3Rva2VuLWJyb2tlci5wbGF0Zm9ybS5zdmMuY2x1c3Rlci5sb2NhbCIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpjaTp3Zi1ydW5uZXIiLCJwb2wiOiJvcmRlcnMtcmVhZCJ9.lOlQ7aSocOZWXUThS5DxbAo4HNaTBFKcgfa9QIrxPFFVFrhBfgBfwxCT-qSxPekkNkVt0lKJqyhnw6V2-pSESQ';
/** A subject-token-shaped JWT (audience tyk-token-broker). */
export const SUBJECT_JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6IjhhN2IwZjNjIiwidHlwIjoiSldUIn0.eyJhdWQiOlsidHlrLXRva2VuLWJyb2tlciJdLCJleHAiOjE3NjcyMjYyMDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpwYXltZW50czphcmdvLXJ1bm5lciJ9.LXEWQrcmsEQBYnyp-6wy9chTD7GQPMTbAiWHF5IaSIE';
/** A classic Tyk key: org id (24 hex) + 32 hex. */
export const TYK_KEY = '5e9d9544a1dcd60001d0ed208ce4b16b22b58894aa86c421e8759df3';
/** The same key in the base64 JSON form newer Gateways return. */
export const TYK_KEY_BASE64 = 'eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjhjZTRiMTZiMjJiNTg4OTRhYTg2YzQyMWU4NzU5ZGYzIiwiaCI6Im11cm11cjY0In0=';
/** A Gateway secret (x-tyk-authorization). */
export const GATEWAY_SECRET = '3f071f4f163d68551f4fc1544c7f69a6';
/** An opaque bearer token. */
export const OPAQUE_TOKEN = 'inoFHE4OO89a8OgcOa_J_0SH';

/** Every fake credential, for checks that output never repeats one. */
export const FIXTURE_CREDENTIALS: readonly string[] = [FIXTURE_JWT, SUBJECT_JWT, TYK_KEY, GATEWAY_SECRET, OPAQUE_TOKEN];

export const DEFAULT_OPTIONS: LintTextOptions = {
  audience: 'tyk-token-broker',
  brokerUrl: undefined,
  suggestedBrokerUrl: 'https://token-broker.platform.svc.cluster.local',
  suggest: false,
};

export function readFixture(name: string): string {
  return readFileSync(`${FIXTURES_DIR}${name}`, 'utf8');
}

/** Lints test/fixtures/argo-lint/`name`, reported under that relative name. */
export function lintFixture(name: string, options: Partial<LintTextOptions> = {}): FileReport {
  return lintText(readFixture(name), name, { ...DEFAULT_OPTIONS, ...options });
}

/** The findings of a report as [line, column, rule] rows, the form most assertions compare. */
export function positions(report: FileReport): [number, number, string][] {
  return report.findings.map((finding) => [finding.line, finding.column, finding.ruleId]);
}
