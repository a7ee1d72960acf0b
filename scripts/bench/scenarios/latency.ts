// Scenario 1, latency: requests approved one at a time. Per request, from the approval write being sent to
//   - the Secret holding a credential (watch event on the Secret): the headline number,
//   - status recording the lease, and the RoleBinding that lets the subjects read the Secret;
// then the credential is used to log in to PostgreSQL (not timed). Interleaved with the operator's samples,
// one raw `creds/<role>` read of the same Vault role (issuer-policy token, keep-alive HTTPS), so both see the
// same background load; the raw leases are revoked at the end.
import { round, roundSummary, summarize } from '../stats.ts';
import { ms, ratio } from '../format.ts';
import type { ScenarioContext, ScenarioResult } from './types.ts';

export async function latency({ bench, sizes }: ScenarioContext): Promise<ScenarioResult> {
  const n = sizes.latency;
  const role = bench.roles.long;
  const started = new Date();
  await bench.settled();
  const secret: number[] = [];
  const status: number[] = [];
  const granted: number[] = [];
  const approveWrite: number[] = [];
  const raw: number[] = [];
  const rawLeases: string[] = [];
  let working = 0;
  const mark = await bench.workMark();
  const cpu0 = bench.cpuSnapshot();
  const mono0 = bench.monotonicUs();
  for (let i = 0; i < n; i++) {
    const name = `latency-${i}`;
    await bench.createWaiting([name], role.name, 1, 60_000);
    const secretAt = bench.secretReady(name);
    const readyAt = bench.ready(name);
    const grantedAt = bench.granted(name);
    const t0 = performance.now();
    await bench.approve(name);
    approveWrite.push(performance.now() - t0);
    const [s, r, g] = await Promise.all([secretAt, readyAt, grantedAt]);
    secret.push(s - t0);
    status.push(r - t0);
    granted.push(g - t0);
    if (await bench.credentialWorks(name)) working++;
    const rawRead = await bench.vault.issue(role.vaultRole);
    raw.push(rawRead.ms);
    rawLeases.push(rawRead.leaseId);
    if ((i + 1) % 50 === 0) bench.log(`  latency: ${i + 1}/${n}`);
  }
  const cpu = bench.cpuUsage(cpu0);
  bench.profileWindow('latency', mono0, n);
  const work = await bench.workSince(mark);
  await bench.vault.revoke(rawLeases);

  const op = summarize(secret);
  const base = summarize(raw);
  const p50Ratio = op.p50 / base.p50;
  return {
    name: 'latency',
    parameters: { requests: n, vaultRole: role.vaultRole, operatorConcurrency: bench.concurrency },
    startedAt: started.toISOString(),
    wallSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    cpu: { run: cpu },
    samples: {
      approvalToSecretMs: secret.map((x) => round(x, 2)),
      approvalToStatusMs: status.map((x) => round(x, 2)),
      approvalToRoleBindingMs: granted.map((x) => round(x, 2)),
      approvalWriteMs: approveWrite.map((x) => round(x, 2)),
      rawVaultIssueMs: raw.map((x) => round(x, 2)),
    },
    summary: {
      approvalToSecret: roundSummary(op),
      approvalToStatus: roundSummary(summarize(status)),
      approvalToRoleBinding: roundSummary(summarize(granted)),
      approvalWrite: roundSummary(summarize(approveWrite)),
      rawVaultIssue: roundSummary(base),
      ratio: { p50: round(p50Ratio), p95: round(op.p95 / base.p95), p99: round(op.p99 / base.p99) },
      overheadP50Ms: round(op.p50 - base.p50, 1),
      credentialsWorking: working,
      credentialsChecked: n,
      // Over the whole run: each sample's create, WaitingForApproval, approval, issuance, credential check and raw read.
      work,
      apiserverRequestsPerRequest: round(work.apiserverRequestsTotal / n, 1),
      operatorCpuMsPerRequest: round(((cpu.byComponent.operator ?? NaN) * 1000) / n, 1),
      apiserverCpuMsPerRequest: round(((cpu.byComponent['kube-apiserver'] ?? NaN) * 1000) / n, 1),
    },
    targets: [
      {
        what: 'latency p50 vs raw issuance',
        goal: '≤ 1.5× raw p50',
        value: `${ms(op.p50)} vs raw ${ms(base.p50)} = ${ratio(p50Ratio)}`,
        met: p50Ratio <= 1.5,
      },
      { what: 'latency p99', goal: '≤ 500 ms', value: ms(op.p99), met: op.p99 <= 500 },
      { what: 'credentials work', goal: `${n}/${n} logins`, value: `${working}/${n}`, met: working === n },
    ],
    notes: [],
    tables: [
      {
        title: `Latency: ${n} requests approved one at a time (operator --concurrency=${bench.concurrency})`,
        columns: ['measure', 'p50', 'p95', 'p99', 'max'],
        rows: [
          ['approval → Secret with credential', ms(op.p50), ms(op.p95), ms(op.p99), ms(op.max)],
          [
            'approval → status.lease recorded',
            ...[50, 95, 99].map((q) => ms(summarize(status)[`p${q}` as 'p50'])),
            ms(summarize(status).max),
          ],
          [
            'approval → RoleBinding',
            ...[50, 95, 99].map((q) => ms(summarize(granted)[`p${q}` as 'p50'])),
            ms(summarize(granted).max),
          ],
          ['raw Vault creds read (same role)', ms(base.p50), ms(base.p95), ms(base.p99), ms(base.max)],
          ['ratio Secret / raw', ratio(p50Ratio), ratio(op.p95 / base.p95), ratio(op.p99 / base.p99), ''],
        ],
      },
    ],
  };
}
