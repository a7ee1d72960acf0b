// The benchmark's peer comparison counts both controllers the same way: Vault calls from Vault's audit log by
// client token (ESO's token, Leasehold's tokens, root's left out), credentials issued only for `<mount>/creds/<role>`
// reads, and its plot gains a row for the peer.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VaultAudit, esoArgs } from '../../../scripts/bench/peers/eso.ts';
import { renderSvg } from '../../../scripts/bench/plot.ts';
import type { Env } from '../../../scripts/stack/env.ts';

function auditIn(t: { teardown(fn: () => void): void }): { audit: VaultAudit; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-unit-audit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { audit: new VaultAudit({ dir } as Env), file: path.join(dir, 'vault-audit-peer.log') };
}

const entry = (type: string, who: string, operation: string, apiPath: string) =>
  `${JSON.stringify({ type, auth: { display_name: who }, request: { operation, path: apiPath } })}\n`;

test("Vault calls are counted per controller from the audit log's responses, root's left out", (t) => {
  const { audit, file } = auditIn(t);
  t.deepEqual(audit.read(), { eso: 0, esoIssued: 0, leasehold: 0, leaseholdIssued: 0 }, 'no file yet: no calls');
  fs.writeFileSync(
    file,
    entry('request', 'token-esopeer', 'read', 'my-postgres-se/creds/r1') +
      entry('response', 'token-esopeer', 'read', 'my-postgres-se/creds/r1') +
      entry('response', 'token-leasehold-issuer', 'read', 'my-postgres-se/creds/r1') +
      entry('response', 'token-leasehold-issuer', 'update', 'sys/leases/renew') +
      entry('response', 'kubernetes-demo-vault', 'list', 'sys/leases/lookup/my-postgres-se/creds/r1/') +
      entry('response', 'root', 'read', 'my-postgres-se/creds/r1'),
  );
  t.deepEqual(audit.read(), { eso: 1, esoIssued: 1, leasehold: 3, leaseholdIssued: 1 });
  // Appended later, half a line at a time: counted once complete.
  const line = entry('response', 'token-esopeer', 'read', 'my-postgres-se/creds/r2');
  fs.appendFileSync(file, line.slice(0, 20));
  t.is(audit.read().eso, 1);
  fs.appendFileSync(file, line.slice(20));
  const now = audit.read();
  t.deepEqual(VaultAudit.delta({ eso: 1, esoIssued: 1, leasehold: 3, leaseholdIssued: 1 }, now), {
    eso: 1,
    esoIssued: 1,
    leasehold: 0,
    leaseholdIssued: 0,
  });
});

test('ESO runs only its namespaced core controllers, at the given concurrency, without a client-side rate limit', (t) => {
  const args = esoArgs(4);
  t.true(args.includes('--concurrent=4'));
  for (const kind of ['cluster-store', 'cluster-external-secret', 'push-secret', 'cluster-push-secret'])
    t.true(args.includes(`--enable-${kind}-reconciler=false`), kind);
  t.false(args.some((a) => a === 'webhook' || a === 'certcontroller'));
  t.true(args.includes('--client-qps=1000'));
});

test('the plot has a row comparing Leasehold with the peer when the results hold one', (t) => {
  const without = renderSvg({});
  t.false(without.includes('External Secrets Operator'));
  const svg = renderSvg({
    peers: {
      eso: {
        summary: {
          latency: { credentials: 10, leasehold: { p50: 40, p99: 90 }, eso: { p50: 35, p99: 120 } },
          burst: {
            credentials: 20,
            leasehold: { credentialsPerSecond: 25, cpuMsPerCredential: 9, requestsPerCredential: 11 },
            eso: { credentialsPerSecond: 32, cpuMsPerCredential: 6, requestsPerCredential: 8 },
          },
          steady: { leasehold: { vaultCalls: 150 }, eso: { vaultCalls: 100 } },
          memory: [{ credentials: 1000, leasehold: 170e6, eso: 200e6 }],
        },
      },
    },
  });
  t.true(svg.includes('Leasehold vs External Secrets Operator'));
  t.true(svg.includes('0.78×'), 'burst rate ratio 25/32');
  t.true(svg.includes('1.50×'), 'steady Vault calls ratio');
  t.true(svg.includes('RSS at 1000'));
});
