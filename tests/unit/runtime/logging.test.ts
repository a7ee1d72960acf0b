import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger, describeError, maskString, redact } from '../../../lib/runtime/logging.ts';
import { KubeApiError } from '../../../lib/runtime/kube.ts';

const PASSWORD = 'A1b2-C3d4-E5f6-G7h8';
const VAULT_TOKEN = 'hvs.CAESIJx7wXyZabcdefghijklmnopQRSTUVWX';
const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVz';

function capture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ level: 'debug', stream });
  return {
    log,
    output: async () => {
      await new Promise((r) => setImmediate(r));
      return chunks.join('');
    },
  };
}

test('a log line about an object holding a password and a token shows neither', async (t) => {
  const { log, output } = capture();
  const object = {
    metadata: { name: 'creds', namespace: 'team-a' },
    spec: { username: 'v-app-123', password: PASSWORD, vaultToken: VAULT_TOKEN },
    data: { 'connection-url': 'postgres://v-app-123@db:5432/app' },
    nested: [{ authorization: `Bearer ${JWT}` }],
  };
  log
    .child({ controller: 'dar', reconcileID: 'r1' })
    .info(`issued credential with ${VAULT_TOKEN} for ${JWT}`, { object, note: `token was ${VAULT_TOKEN}` });
  const out = await output();
  t.false(out.includes(PASSWORD), 'password leaked');
  t.false(out.includes(VAULT_TOKEN), 'Vault token leaked');
  t.false(out.includes(JWT), 'JWT leaked');
  const line = JSON.parse(out.trim()) as Record<string, unknown>;
  t.is(line.controller, 'dar');
  t.is(line.reconcileID, 'r1');
  t.is((line.object as { metadata: { name: string } }).metadata.name, 'creds', 'non-secret fields survive');
  t.is((line.object as { spec: { username: string } }).spec.username, 'v-app-123');
});

test('redaction never mutates the logged object', (t) => {
  const o = { password: PASSWORD, inner: { token: 't' } };
  const r = redact(o) as typeof o;
  t.is(o.password, PASSWORD);
  t.is(r.password, '[REDACTED]');
  t.is(r.inner.token, '[REDACTED]');
});

test('token-like values are masked inside free text; ordinary text is not', (t) => {
  t.is(maskString(`login returned ${VAULT_TOKEN}.`), 'login returned [REDACTED].');
  t.is(maskString('legacy s.1234567890abcdefghijklmn token'), 'legacy [REDACTED] token');
  t.is(maskString('Authorization: Bearer abc.def'), 'Authorization: Bearer [REDACTED]');
  t.is(maskString('postgres://admin:hunter2@db:5432/x'), 'postgres://admin:[REDACTED]@db:5432/x');
  t.is(maskString('e.g. the s.t. case'), 'e.g. the s.t. case');
});

test('every kind of token is masked, whatever its case or prefix: batch, recovery and legacy Vault tokens, lower-case schemes, URLs with passwords', (t) => {
  const tail = 'AbCdEfGhIjKlMnOpQrStUvWx';
  for (const token of [`hvb.${tail}`, `hvr.${tail}`, `b.${tail}`, `r.${tail}`, `s.${tail}`])
    t.is(maskString(`got ${token} back`), 'got [REDACTED] back', token);
  t.is(maskString('authorization: bearer abc'), 'authorization: bearer [REDACTED]');
  t.is(maskString('BASIC dXNlcjpwYXNz'), 'BASIC [REDACTED]');
  t.is(maskString(`jwt ${JWT}`), 'jwt [REDACTED]');
  t.is(maskString('mysql://u:p@h/db and https://x:y@z'), 'mysql://u:[REDACTED]@h/db and https://x:[REDACTED]@z');
  t.is(
    maskString('lease my-postgres/creds/k8s.-.demo.bench-long/QVvpQ6e44jt1dKMrsPhvSQfH renewed'),
    'lease my-postgres/creds/k8s.-.demo.bench-long/QVvpQ6e44jt1dKMrsPhvSQfH renewed',
  );
});

test('describeError keeps the HTTP status and Status reason, never headers or bodies beyond them', (t) => {
  const apiException = Object.assign(
    new Error(
      `HTTP-Code: 403 Message: forbidden Headers: {"authorization":"Bearer ${JWT}"} Body: {"spec":{"password":"${PASSWORD}"}}`,
    ),
    {
      code: 403,
      body: JSON.stringify({
        kind: 'Status',
        reason: 'Forbidden',
        message: 'secrets is forbidden',
        details: { password: PASSWORD },
      }),
      headers: { authorization: `Bearer ${JWT}` },
    },
  );
  const d = describeError(apiException);
  t.is(d, 'HTTP 403 Forbidden: secrets is forbidden');
  t.is(
    describeError(new KubeApiError(409, 'Conflict', 'the object has been modified')),
    'HTTP 409 Conflict: the object has been modified',
  );
  t.is(
    describeError(new Error('outer', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) })),
    'outer; cause: connect (ECONNREFUSED)',
  );
  t.is(describeError(`raw ${VAULT_TOKEN}`), 'raw [REDACTED]');
});

test('an Error passed as log metadata is reduced to its safe description', async (t) => {
  const { log, output } = capture();
  const err = Object.assign(new Error(`Body: ${PASSWORD}`), {
    code: 500,
    body: '{"kind":"Status","reason":"InternalError","message":"boom"}',
  });
  log.error('write failed', { error: err });
  const out = await output();
  t.false(out.includes(PASSWORD));
  t.true(out.includes('HTTP 500 InternalError: boom'));
});
