// The stack's optional databases fail loudly and early when their server is missing or too old, naming the Debian
// package to install, and an unknown database name is refused before anything starts.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEnv, type StackDatabase } from '../../../scripts/stack/env.ts';
import { findMariaDB } from '../../../scripts/stack/mariadb.ts';
import { findRedis } from '../../../scripts/stack/redis.ts';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-unit-stack-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('no MariaDB server where the stack looks: the error names the package to install', (t) => {
  const err = t.throws(() => findMariaDB([tempDir(t)]));
  t.regex(err.message, /MariaDB server binaries not found/);
  t.regex(err.message, /apt-get install mariadb-server/);
});

test('no redis-server where the stack looks: the error names the package to install', (t) => {
  const err = t.throws(() => findRedis([tempDir(t)]));
  t.regex(err.message, /redis-server not found/);
  t.regex(err.message, /apt-get install redis-server/);
});

test('a redis-server older than 7 is refused, saying the stack needs Redis 7 (ACLs)', (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(
    path.join(dir, 'redis-server'),
    '#!/bin/sh\necho "Redis server v=6.0.16 sha=00000000:0 malloc=jemalloc-5.2.1 bits=64"\n',
    { mode: 0o755 },
  );
  const err = t.throws(() => findRedis([dir]));
  t.regex(
    err.message,
    /is Redis 6\.0\.16; the stack needs Redis 7 or later \(ACLs\)\. Install it: apt-get install redis-server/,
  );
});

test('a redis-server 7 is found with its version', (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(
    path.join(dir, 'redis-server'),
    '#!/bin/sh\necho "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"\n',
    { mode: 0o755 },
  );
  t.deepEqual(findRedis([dir]), { server: path.join(dir, 'redis-server'), version: '7.0.15' });
});

test('asking the stack for a database it does not run is refused before anything starts', async (t) => {
  const err = await t.throwsAsync(() => startEnv({ databases: ['mongodb' as StackDatabase], log: () => undefined }));
  t.is(err.message, 'startEnv: unknown database mongodb (known: mariadb, redis)');
});
