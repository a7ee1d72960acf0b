// The Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Binaries } from './binaries.ts';
import { FatalStartError, request, waitFor } from './http.ts';
import type { Pki } from './pki.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

/** Non-admin users the stack creates (static tokens, no groups but system:authenticated), for RBAC tests. */
export const TEST_USERS = ['alice', 'bob', 'carol'] as const;
export type TestUser = (typeof TEST_USERS)[number];

export interface KubeUser {
  name: string;
  token: string;
  kubeconfig: string;
}

export interface KubeControlPlane {
  server: string;
  etcdEndpoint: string;
  apiserverPort: number;
  etcd: ManagedProcess;
  apiserver: ManagedProcess;
  controllerManager: ManagedProcess;
  admin: KubeUser;
  users: Record<TestUser, KubeUser>;
}

function token(): string {
  return crypto.randomBytes(24).toString('hex');
}

export function writeKubeconfig(file: string, server: string, caFile: string, user: string, bearer: string): void {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'leasehold-test', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { token: bearer } }],
    contexts: [{ name: user, context: { cluster: 'leasehold-test', user, namespace: 'default' } }],
    'current-context': user,
  };
  fs.writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
}

export async function startControlPlane(
  dir: string,
  bins: Binaries,
  pki: Pki,
  onCreated: (p: KubeControlPlane) => void = () => undefined,
): Promise<KubeControlPlane> {
  const [etcdClient, etcdPeer, apiserverPort, kcmPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const server = `https://127.0.0.1:${apiserverPort}`;
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs, { recursive: true });

  const admin = { name: 'admin', token: token() };
  const kcm = { name: 'kube-controller-manager', token: token() };
  const users = TEST_USERS.map((name) => ({ name, token: token() }));
  const tokensCsv = path.join(dir, 'tokens.csv');
  fs.writeFileSync(
    tokensCsv,
    [
      `${admin.token},admin,admin-uid,"system:masters"`,
      `${kcm.token},system:kube-controller-manager,kcm-uid,"system:masters"`,
      ...users.map((u) => `${u.token},${u.name},${u.name}-uid`),
    ].join('\n') + '\n',
    { mode: 0o600 },
  );

  const etcd = new ManagedProcess({
    name: 'etcd',
    command: bins.etcd,
    logFile: path.join(logs, 'etcd.log'),
    args: [
      '--name=leasehold',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=leasehold=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  });

  const apiserver = new ManagedProcess({
    name: 'kube-apiserver',
    command: bins.kubeApiserver,
    // Its graceful shutdown drains watches for well over 10 s; all state is in etcd, so don't wait long.
    stopGraceMs: 3000,
    logFile: path.join(logs, 'kube-apiserver.log'),
    args: [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiserverPort}`,
      '--advertise-address=127.0.0.1',
      `--tls-cert-file=${pki.apiserverCert}`,
      `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${tokensCsv}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--endpoint-reconciler-type=none',
      // Mutating admission policies (alpha in 1.33) record who created a request (see the approval issue).
      '--feature-gates=MutatingAdmissionPolicy=true',
      '--runtime-config=admissionregistration.k8s.io/v1alpha1=true',
      `--cert-dir=${path.join(dir, 'apiserver')}`,
      '--v=1',
    ],
  });

  const kcmKubeconfig = path.join(dir, 'kcm.kubeconfig');
  writeKubeconfig(kcmKubeconfig, server, pki.caCert, kcm.name, kcm.token);
  const controllerManager = new ManagedProcess({
    name: 'kube-controller-manager',
    command: bins.kubeControllerManager,
    logFile: path.join(logs, 'kube-controller-manager.log'),
    args: [
      `--kubeconfig=${kcmKubeconfig}`,
      `--authentication-kubeconfig=${kcmKubeconfig}`,
      `--authorization-kubeconfig=${kcmKubeconfig}`,
      '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,' +
        'serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller',
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.caCert}`,
      '--use-service-account-credentials=false',
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${path.join(dir, 'kcm')}`,
      '--v=1',
    ],
  });

  const ca = fs.readFileSync(pki.caCert, 'utf8');
  const plane: KubeControlPlane = {
    server,
    etcdEndpoint: `http://127.0.0.1:${etcdClient}`,
    apiserverPort,
    etcd,
    apiserver,
    controllerManager,
    admin: { ...admin, kubeconfig: path.join(dir, 'admin.kubeconfig') },
    users: Object.fromEntries(
      users.map((u) => [u.name, { ...u, kubeconfig: path.join(dir, `${u.name}.kubeconfig`) }]),
    ) as Record<TestUser, KubeUser>,
  };
  writeKubeconfig(plane.admin.kubeconfig, server, pki.caCert, 'admin', admin.token);
  for (const u of Object.values(plane.users)) writeKubeconfig(u.kubeconfig, server, pki.caCert, u.name, u.token);

  onCreated(plane);
  await startEtcd(plane, etcdClient);
  await startApiserver(plane, ca);
  await startControllerManager(plane, kcmPort);
  return plane;
}

export async function startEtcd(plane: KubeControlPlane, clientPort?: number): Promise<void> {
  plane.etcd.start();
  const port =
    clientPort ??
    Number(
      plane.etcd.spec.args
        .find((a) => a.startsWith('--listen-client-urls'))!
        .split(':')
        .pop(),
    );
  await waitFor(
    'etcd to serve /health',
    async () => {
      assertRunning(plane.etcd);
      const res = await request({ url: `http://127.0.0.1:${port}/health` });
      return res.status === 200;
    },
    60_000,
  );
}

export async function startApiserver(plane: KubeControlPlane, ca: string): Promise<void> {
  plane.apiserver.start();
  await waitFor(
    'kube-apiserver to report /readyz',
    async () => {
      assertRunning(plane.apiserver);
      const res = await request({
        url: `${plane.server}/readyz`,
        ca,
        headers: { authorization: `Bearer ${plane.admin.token}` },
      });
      return res.status === 200;
    },
    120_000,
    200,
  );
}

export async function startControllerManager(plane: KubeControlPlane, port?: number): Promise<void> {
  plane.controllerManager.start();
  const p = port ?? Number(plane.controllerManager.spec.args.find((a) => a.startsWith('--secure-port'))!.split('=')[1]);
  await waitFor(
    'kube-controller-manager to report /healthz',
    async () => {
      assertRunning(plane.controllerManager);
      // Its serving cert is self-signed in --cert-dir; /healthz carries no secrets, so skip verification here.
      const res = await insecureGet(`https://127.0.0.1:${p}/healthz`);
      return res.status === 200;
    },
    60_000,
    200,
  );
}

async function insecureGet(url: string) {
  const https = await import('node:https');
  return new Promise<{ status: number }>((resolve, reject) => {
    const r = https.get(url, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    r.on('error', reject);
  });
}

export function assertRunning(p: ManagedProcess): void {
  if (!p.running) throw new FatalStartError(`${p.spec.name} exited during start-up. Last log lines:\n${p.tail()}`);
}
