// Certificates for the stack, made with the openssl CLI: one CA signing the kube-apiserver's and Vault's
// serving certificates, plus the service-account signing key pair.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  vaultCert: string;
  vaultKey: string;
  saKey: string;
  saPub: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function servingCert(dir: string, name: string, sans: string): void {
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(
    ext,
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      ext,
    ],
    dir,
  );
}

export function createPki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '3650',
      '-subj',
      '/CN=leasehold-test-ca',
    ],
    dir,
  );
  servingCert(dir, 'apiserver', 'IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc');
  servingCert(dir, 'vault', 'IP:127.0.0.1,DNS:localhost');
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    apiserverCert: p('apiserver.crt'),
    apiserverKey: p('apiserver.key'),
    vaultCert: p('vault.crt'),
    vaultKey: p('vault.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}
