// People on the stack: kubectl as one of the stack's users (static tokens, no groups but system:authenticated) with
// the plugin from this checkout on PATH, and the guide's ground with Leasehold's ClusterRoles for people and the
// admission policies installed, so that who may request, approve and review is the API server's call.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Env } from '../../../scripts/stack/env.ts';
import type { TestUser } from '../../../scripts/stack/kube.ts';
import { configureVaultForOperator, installCrds, kubectl } from '../../../scripts/stack/leasehold-setup.ts';
import { guideBindings } from './leasehold.ts';

/** A user of the stack, or its cluster administrator. */
export type Person = 'admin' | TestUser;

export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

const repo = process.cwd();

/** `kubectl ARGS` as `user` (their kubeconfig), with `kubectl vault` from this checkout on PATH; never throws. */
export function kubectlAs(env: Env, user: Person, args: string[], input?: string): KubectlRun {
  const k = env.kubernetes;
  const kubeconfig = user === 'admin' ? k.kubeconfig : k.users[user].kubeconfig;
  // The flag goes last: kubectl refuses flags before a plugin's name.
  const r = spawnSync(k.kubectl, [...args, `--kubeconfig=${kubeconfig}`], {
    input,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(repo, 'bin')}:${path.join(repo, 'node_modules/.bin')}:${process.env.PATH}`,
    },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The guide's ground for people, the operator not started: Leasehold's CRDs, namespace leasehold-system, the
 * people's ClusterRoles (manifests/rbac/people.yaml) and the admission policies (manifests/admission/), the guide's
 * AppBindings and ServiceAccounts (vault, demo-sa) in `namespace`, a RoleBinding there per [user, ClusterRole] in
 * `bindings`, Vault set up for an operator logging in as <namespace>/vault (login TTL 1h, max 2h), and the guide's
 * SecretEngine and PostgresRole (psql-role). `between` runs after the bindings, before Vault (more namespaces, Roles).
 */
export async function prepareGuideForPeople(
  env: Env,
  bindings: Array<[TestUser, string]>,
  opts: { namespace?: string; between?: () => void } = {},
): Promise<void> {
  const ns = opts.namespace ?? 'demo';
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', 'manifests/rbac/people.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/admission/']);
  kubectl(env, ['apply', '-f', '-'], guideBindings(env, opts.namespace ? { namespace: ns } : {}));
  kubectl(env, ['-n', ns, 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', ns, 'create', 'serviceaccount', 'demo-sa']);
  for (const [user, role] of bindings)
    kubectl(env, ['-n', ns, 'create', 'rolebinding', `${user}-${role}`, `--clusterrole=${role}`, `--user=${user}`]);
  opts.between?.();
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: ns, name: 'vault' },
  });
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
}
