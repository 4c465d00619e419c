import type { Deny } from './deny.js';
import { denyInForce, denyMatches, type DenySubject } from './deny-match.js';

/**
 * The denies in force on one replica at one moment: the static ones of the configuration and the shared ones last
 * read from Redis. Immutable; replaced as a whole when either changes. Pure.
 *
 * A deny without `jti` refuses a workload's exchanges. A deny with `jti` revokes one issued token: the cache never
 * serves it again (the workload, unless denied too, gets a fresh token), and in tyk-key mode the key is deleted.
 */
export class DenySnapshot {
  private readonly workloadDenies: readonly Deny[];
  private readonly tokenDenies: ReadonlyMap<string, readonly Deny[]>;

  constructor(
    readonly staticDenies: readonly Deny[],
    readonly sharedDenies: readonly Deny[],
  ) {
    const workload: Deny[] = [];
    const token = new Map<string, Deny[]>();
    for (const deny of [...staticDenies, ...sharedDenies]) {
      const jti = deny.match.jti;
      if (jti === undefined) workload.push(deny);
      else token.set(jti, [...(token.get(jti) ?? []), deny]);
    }
    this.workloadDenies = workload;
    this.tokenDenies = token;
  }

  /** True when nothing is denied: an exchange then pays one property read. */
  get empty(): boolean {
    return this.workloadDenies.length === 0 && this.tokenDenies.size === 0;
  }

  /** Every deny, static first. */
  all(): readonly Deny[] {
    return [...this.staticDenies, ...this.sharedDenies];
  }

  /** Denies still in force at `nowMs`. */
  active(nowMs: number): readonly Deny[] {
    return this.all().filter((deny) => denyInForce(deny, nowMs));
  }

  /** The first deny in force that refuses this workload's exchanges. */
  refusing(subject: DenySubject, nowMs: number): Deny | undefined {
    for (const deny of this.workloadDenies) if (denyMatches(deny, subject, nowMs)) return deny;
    return undefined;
  }

  /** The deny in force that revokes the issued token `jti` held by `subject`. */
  revoking(jti: string, subject: DenySubject, nowMs: number): Deny | undefined {
    const candidates = this.tokenDenies.get(jti);
    if (candidates === undefined) return undefined;
    const holder = { ...subject, jti };
    return candidates.find((deny) => denyMatches(deny, holder, nowMs));
  }
}

export const EMPTY_DENY_SNAPSHOT = new DenySnapshot([], []);
