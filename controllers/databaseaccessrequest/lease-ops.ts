// The Vault lease operations the pipeline's steps use, each counted in the lease metrics and remembered where a
// later decision needs it (memory.ts): issue (under the role's shared gate), renew, look up, revoke, give back.
import type { DatabaseAccessRequest } from '../../api/index.ts';
import type { KeyedReadWriteLock, KubeClient } from '../../lib/runtime/index.ts';
import type { LeaseInfo, LeasedCredential, VaultClient } from '../../lib/vault/client.ts';
import { VaultRequestError, isRevocationFailed } from '../../lib/vault/errors.ts';
import { explain } from '../shared/report.ts';
import type { RequestMemory } from './memory.ts';
import type { LeaseMetrics, RevocationReason } from './metrics.ts';
import type { RenewalAnswer } from './observe.ts';
import type { EventIntent } from './plan.ts';
import { renewalTruncated } from './decide.ts';

/** A Vault to call, and the reconcile's signal that cancels the call when the pass is abandoned. */
export interface VaultAt {
  client: VaultClient;
  signal?: AbortSignal;
}

/** The key issuance and sweeps of one Vault role share. */
function roleKey(mount: string, vaultRole: string): string {
  return `${mount}/${vaultRole}`;
}

export interface LeaseOpsOptions {
  kube: KubeClient;
  metrics: LeaseMetrics;
  memory: RequestMemory;
  /** Per Vault role (mount/role): issuing calls hold it shared, a sweep alone. */
  roleGate: KeyedReadWriteLock;
  /** Records an Event about a request (the sweep's). */
  emit: (dar: DatabaseAccessRequest, e: EventIntent) => void;
  nowMs: () => number;
}

export class LeaseOps {
  readonly kube: KubeClient;
  private readonly metrics: LeaseMetrics;
  private readonly memory: RequestMemory;
  private readonly roleGate: KeyedReadWriteLock;
  private readonly emit: LeaseOpsOptions['emit'];
  private readonly nowMs: () => number;

  constructor(o: LeaseOpsOptions) {
    ({
      kube: this.kube,
      metrics: this.metrics,
      memory: this.memory,
      roleGate: this.roleGate,
      emit: this.emit,
      nowMs: this.nowMs,
    } = o);
  }

  /** `<mount>/creds/<role>`: a new lease, remembered at once so a concurrent sweep never takes it. */
  issue(vault: VaultAt, role: { mount: string; vaultRole: string; forUid: string }): Promise<LeasedCredential> {
    const { mount, vaultRole, forUid } = role;
    return this.roleGate.shared(roleKey(mount, vaultRole), async () => {
      const issued = await vault.client.issueCredential(mount, vaultRole, { signal: vault.signal });
      this.memory.issuedHere(issued.leaseId, forUid, this.nowMs());
      return issued;
    });
  }

  /** Runs `fn` while no issuing call of this process is under way for the Vault role (a sweep). */
  exclusively<T>(mount: string, vaultRole: string, fn: () => Promise<T>): Promise<T> {
    return this.roleGate.exclusive(roleKey(mount, vaultRole), fn);
  }

  lookup(vault: VaultAt, leaseId: string): Promise<LeaseInfo | undefined> {
    return vault.client.lookupLease(leaseId, { signal: vault.signal });
  }

  /**
   * Renews a lease for `askSeconds` and says what came of it: renewed (for how long), refused (Vault won't: a
   * lease that still exists), gone (Vault doesn't know it), or failed (Vault couldn't be asked: keep trying).
   */
  async renew(
    vault: VaultAt,
    r: { uid: string; leaseId: string; askSeconds: number; termSeconds: number },
  ): Promise<RenewalAnswer> {
    const { uid, leaseId, askSeconds, termSeconds } = r;
    try {
      const granted = (await vault.client.renewLease(leaseId, askSeconds, { signal: vault.signal }))
        .leaseDurationSeconds;
      const truncated = renewalTruncated(askSeconds, granted, termSeconds);
      this.metrics.renewals.labels(truncated ? 'truncated' : 'success').inc();
      this.memory.liveness.alive(uid, leaseId, this.nowMs());
      return {
        kind: 'renewed',
        grantedSeconds: granted,
        askedSeconds: askSeconds,
        termSeconds,
        failuresBefore: this.memory.renewalAnswered(uid),
      };
    } catch (err) {
      if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
        this.metrics.renewals.labels('refused').inc();
        this.memory.renewalAnswered(uid);
        const info = await vault.client.lookupLease(leaseId, { signal: vault.signal }).catch(() => null);
        return info === undefined ? { kind: 'gone' } : { kind: 'refused', detail: err.detail };
      }
      this.metrics.renewals.labels('error').inc();
      return { kind: 'failed', message: explain(err).message, failures: this.memory.renewalFailed(uid) };
    }
  }

  /**
   * Revokes a lease, counting the outcome: `success` (Vault revoked it) or `gone` (Vault doesn't know it). Throws
   * whatever kept Vault from revoking it (RevocationFailed, Unreachable, …); the caller keeps the lease recorded.
   */
  async revoke(vault: VaultAt, leaseId: string, reason: RevocationReason): Promise<'success' | 'gone'> {
    try {
      const outcome =
        (await vault.client.revokeLease(leaseId, { signal: vault.signal })) === 'revoked' ? 'success' : 'gone';
      this.metrics.revocations.labels(reason, outcome).inc();
      this.memory.revocationRetries.done(leaseId);
      return outcome;
    } catch (err) {
      this.metrics.revocations.labels(reason, isRevocationFailed(err) ? 'failed' : 'error').inc();
      throw err;
    }
  }

  /** A lease issued here that could not be put in its Secret: revoked at once (best effort; the sweep is the backstop). */
  async giveBack(vault: VaultAt, leaseId: string): Promise<void> {
    this.memory.givenBack(leaseId);
    // Not cancelled with the pass: a lease this process can't record must go back to Vault whatever happens.
    await this.revoke({ client: vault.client }, leaseId, 'unrecorded').catch(() => undefined);
  }

  event(dar: DatabaseAccessRequest, e: EventIntent): void {
    this.emit(dar, e);
  }
}
