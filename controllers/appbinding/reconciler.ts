// AppBinding: says in status whether its target answers — Vault through sys/health, a login and the issuer
// token; PostgreSQL through a login with the AppBinding's Secret — and, when not, why (DNS, TLS, refused,
// authentication), without ever repeating a secret. Checks are made when the AppBinding (or its Secret)
// changes, again after a failure, and hourly; a resync of an unchanged, healthy AppBinding costs no call.
import pg from 'pg';
import { ConditionType, Reason, type AppBinding } from '../../api/index.ts';
import { DONE, requeueAfter, type ObjectKey, type ReconcileContext, type Reconciler, type Result } from '../../lib/runtime/index.ts';
import { scrub } from '../../lib/vault/errors.ts';
import { appBindingUrl, applySecretTransforms, decodeSecretData, postgresTarget } from '../shared/appbinding.ts';
import type { ControllerContext } from '../shared/context.ts';
import { explain, report } from '../shared/report.ts';
import { APP_BINDINGS, SECRETS } from '../shared/resources.ts';

/** A condition on Vault AppBindings: whether issued leases are owned by the issuer token (and so outlive the login). */
export const LEASE_OWNERSHIP = 'LeaseOwnership';
const RECHECK_HEALTHY_MS = 60 * 60_000;
const RECHECK_FAILED_MS = 30_000;

type Target = 'vault' | 'postgres' | 'other';

export function targetKind(ab: AppBinding): Target {
  if (ab.spec.parameters?.kind === 'VaultServerConfiguration') return 'vault';
  const scheme = (ab.spec.clientConfig.url ? ab.spec.clientConfig.url.split(':')[0] : ab.spec.clientConfig.service?.scheme)?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql' || ab.spec.type?.toLowerCase().includes('postgres')) return 'postgres';
  if (ab.spec.type?.toLowerCase().includes('vault')) return 'vault';
  return 'other';
}

interface Check { ok: boolean; reason: string; message: string; extra?: { type: string; status: 'True' | 'False'; reason: string; message: string } }

/** Why a PostgreSQL connection failed, in words a person can act on (pg error codes and socket errors). */
export function describePgError(err: unknown, where: string): { reason: string; message: string } {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case '28P01': case '28000': return { reason: 'AuthenticationFailed', message: `${where}: the username or password in the AppBinding's Secret was refused` };
    case '3D000': return { reason: 'DatabaseNotFound', message: `${where}: the database named in the AppBinding's path does not exist` };
    case 'ENOTFOUND': case 'EAI_AGAIN': return { reason: 'DNSLookupFailed', message: `${where}: the host name does not resolve` };
    case 'ECONNREFUSED': return { reason: Reason.Unreachable, message: `${where}: connection refused` };
    case 'ETIMEDOUT': return { reason: Reason.Unreachable, message: `${where}: connection timed out` };
    case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'SELF_SIGNED_CERT_IN_CHAIN': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return { reason: 'TLSError', message: `${where}: TLS verification failed (${e.code})` };
    default: return { reason: Reason.Unreachable, message: `${where}: ${scrub(e.message ?? String(err)).slice(0, 500)}` };
  }
}

export class AppBindingReconciler implements Reconciler {
  private readonly lastCheck = new Map<string, { version: string; ok: boolean; atMs: number }>();

  constructor(private readonly c: ControllerContext) {}

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const ab = this.c.caches.appBindings.get(key.namespace, key.name);
    if (!ab || ab.metadata.deletionTimestamp) return DONE;
    const kind = targetKind(ab);
    if (kind === 'other') return DONE;
    const secretVersion = ab.spec.secret ? this.c.caches.secrets.get(key.namespace, ab.spec.secret.name)?.metadata?.resourceVersion ?? 'absent' : '';
    // An issuer token replaced or lost since the last check (revoked in Vault, found at issuance) is news too.
    const versionNow = () => `${ab.metadata.resourceVersion}/${secretVersion}/${this.c.connections.issuerGeneration(ab)}`;
    const version = versionNow();
    const now = ctx.now().getTime();
    const last = this.lastCheck.get(ab.metadata.uid ?? '');
    if (last && last.version === version) {
      const due = last.atMs + (last.ok ? RECHECK_HEALTHY_MS : RECHECK_FAILED_MS);
      if (now < due) return requeueAfter(due - now);
    }
    const check = kind === 'vault' ? await this.checkVault(ab, ctx) : await this.checkPostgres(ab, ctx);
    await report(this.c.kube, APP_BINDINGS, this.c.events('leasehold-appbinding'), ab, {
      conditions: [
        { type: ConditionType.Ready, status: check.ok ? 'True' : 'False', reason: check.reason, message: check.message },
        ...(check.extra ? [check.extra] : []),
      ],
    }, ctx.now(), ctx.signal);
    // Remembered only once reported: a status write lost to a conflict must be redone by the retry.
    this.lastCheck.set(ab.metadata.uid ?? '', { version: versionNow(), ok: check.ok, atMs: now });
    return requeueAfter(check.ok ? RECHECK_HEALTHY_MS : RECHECK_FAILED_MS);
  }

  private async checkVault(ab: AppBinding, ctx: ReconcileContext): Promise<Check> {
    try {
      const conn = await this.c.connections.forAppBinding(ab, ctx.signal);
      const health = await conn.client.health();
      if (!health.initialized || health.sealed) return { ok: false, reason: 'VaultSealed', message: `Vault at ${conn.endpoint.address} is ${health.initialized ? 'sealed' : 'not initialised'}` };
      // Asked of Vault, not the cache: a token revoked behind the operator's back is replaced here.
      const issuer = await conn.verifyIssuer();
      const extra = issuer.kind === 'ready'
        ? { type: LEASE_OWNERSHIP, status: 'True' as const, reason: 'IssuerToken', message: `leases are owned by an orphan periodic token from token role ${this.c.connections.issuerTokenRole}; they outlive the operator's login` }
        : { type: LEASE_OWNERSHIP, status: 'False' as const, reason: issuer.reason, message: issuer.message };
      return { ok: true, reason: 'Reachable', message: `Vault ${health.version ?? ''} at ${conn.endpoint.address} answers; logged in with ${conn.authDescription}`.replace('  ', ' '), extra };
    } catch (err) {
      this.c.connections.invalidate(ab);
      const { reason, message } = explain(err);
      return { ok: false, reason, message };
    }
  }

  private async checkPostgres(ab: AppBinding, ctx: ReconcileContext): Promise<Check> {
    const ns = ab.metadata.namespace ?? '';
    const where = `PostgreSQL at ${safeHost(ab)}`;
    if (!ab.spec.secret) return { ok: false, reason: 'InvalidAppBinding', message: 'no spec.secret with the admin username and password' };
    const secret = await this.c.kube.tryGet<{ data?: Record<string, string>; metadata?: object }>(SECRETS, ns, ab.spec.secret.name, ctx);
    if (!secret) return { ok: false, reason: Reason.ReferenceNotFound, message: `Secret ${ns}/${ab.spec.secret.name} does not exist` };
    let client: pg.Client | undefined;
    try {
      const t = postgresTarget(ab, applySecretTransforms(decodeSecretData(secret.data), ab.spec.secretTransforms, () => undefined));
      const sslmode = new URLSearchParams(t.query).get('sslmode');
      client = new pg.Client({
        host: t.host, port: t.port, database: t.database, user: t.username, password: t.password, connectionTimeoutMillis: 5000,
        ssl: !sslmode || sslmode === 'disable' ? false : { rejectUnauthorized: !ab.spec.clientConfig.insecureSkipTLSVerify, ca: ab.spec.clientConfig.caBundle ? Buffer.from(ab.spec.clientConfig.caBundle, 'base64').toString() : undefined },
      });
      client.on('error', () => undefined);
      await client.connect();
      await client.query('SELECT 1');
      return { ok: true, reason: 'Reachable', message: `${where} accepts the admin login` };
    } catch (err) {
      const e = explain(err);
      if (e.reason !== 'InternalError') return { ok: false, reason: e.reason, message: e.message };
      return { ok: false, ...describePgError(err, where) };
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
}

function safeHost(ab: AppBinding): string {
  try {
    const u = appBindingUrl(ab);
    return `${u.hostname}:${u.port || 5432}`;
  } catch {
    return 'an invalid address';
  }
}
