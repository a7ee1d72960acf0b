// The container image, checked without a container engine: the Dockerfile's build stage is replayed (only the
// files it copies, compiled with the repository's TypeScript), and what the runtime stage copies and runs must
// exist afterwards, import only production dependencies, and agree with manifests/operator/deployment.yaml.
import test from 'ava';
import { builtinModules } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseConfig } from '../../cmd/operator/config.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ---- a small Dockerfile reader -----------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function readDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(l) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args.trim());
      stages.push({ from: m?.[1] ?? args, name: m?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args: args.trim() });
    }
  }
  return stages;
}

const all = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op);
const one = (s: Stage, op: string) => {
  const found = all(s, op);
  if (found.length !== 1) throw new Error(`expected one ${op} in the stage FROM ${s.from}, found ${found.length}`);
  return found[0]!.args;
};

/** COPY [--from=X] SRC... DEST */
function copies(s: Stage): Array<{ from?: string; sources: string[]; dest: string }> {
  return all(s, 'COPY').map((i) => {
    const words = i.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const rest = words.filter((w) => !w.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
  });
}

/** Where a COPY puts a source, inside the stage's WORKDIR. */
function destination(workdir: string, source: string, dest: string): string {
  const base = path.posix.resolve(workdir, dest);
  return dest.endsWith('/') ? path.posix.join(base, path.posix.basename(source)) : base;
}

function dockerignoreMatches(patterns: string[], file: string): boolean {
  let ignored = false;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    const glob = (negate ? p.slice(1) : p).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${glob
        .split('**/')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('(?:.*/)?')}(?:/.*)?$`,
    );
    if (re.test(file)) ignored = !negate;
  }
  return ignored;
}

// ---- what the files say ---------------------------------------------------------------------------------------------

const stages = readDockerfile(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'));
const build = stages.find((s) => s.name === 'build')!;
const runtime = stages.at(-1)!;
const ignore = fs
  .readFileSync(path.join(repo, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
};
type Container = {
  command: string[];
  args?: string[];
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
};
const deployment = YAML.parse(fs.readFileSync(path.join(repo, 'manifests/operator/deployment.yaml'), 'utf8')) as {
  spec: {
    template: { spec: { securityContext: { runAsUser: number; runAsNonRoot: boolean }; containers: Container[] } };
  };
};
const container = deployment.spec.template.spec.containers[0]!;
const entrypoint = JSON.parse(one(runtime, 'ENTRYPOINT')) as string[];
const runtimeWorkdir = one(runtime, 'WORKDIR');
const buildWorkdir = one(build, 'WORKDIR');

// ---- replaying the build stage ---------------------------------------------------------------------------------------

/** A build context holding only what the build stage copies, compiled as `npm run build` would. */
let built: Promise<string> | undefined;
function buildLikeTheImage(): Promise<string> {
  built ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-image-'));
    const app = path.join(dir, 'app');
    for (const c of copies(build)) {
      for (const src of c.sources) {
        const to = path.join(app, path.posix.relative(buildWorkdir, destination(buildWorkdir, src, c.dest)));
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.cpSync(path.join(repo, src), to, { recursive: true });
      }
    }
    // `npm ci` in the image: the repository's installed node_modules stand in for it.
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    const [tool, ...args] = pkg.scripts.build!.split(/\s+/);
    try {
      execFileSync(process.execPath, [path.join(repo, 'node_modules/.bin', tool!), ...args], {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(
        `\`${pkg.scripts.build}\` failed on the files the build stage copies:\n${e.stdout ?? ''}${e.stderr ?? ''}`,
        { cause: err },
      );
    }
    return app;
  })();
  return built;
}

test.after.always(async () => {
  if (!built) return;
  const app = await built.catch(() => undefined);
  if (app) fs.rmSync(path.dirname(app), { recursive: true, force: true });
});

// ---- the tests ----------------------------------------------------------------------------------------------------

test('two stages on node:24-slim: the build stage runs npm ci and npm run build', (t) => {
  t.is(stages.length, 2);
  for (const s of stages) t.is(s.from, 'node:24-slim');
  t.truthy(build, 'a stage named build');
  const runs = all(build, 'RUN').map((r) => r.args);
  t.true(
    runs.some((r) => /^npm ci\b/.test(r)),
    'npm ci in the build stage',
  );
  t.true(
    runs.some((r) => /\bnpm run build\b/.test(r)),
    'npm run build in the build stage',
  );
});

test('every file the Dockerfile copies from the context exists and is not excluded by .dockerignore', (t) => {
  for (const s of stages) {
    for (const c of copies(s).filter((x) => !x.from)) {
      for (const src of c.sources) {
        t.true(fs.existsSync(path.join(repo, src)), `${src} exists`);
        t.false(dockerignoreMatches(ignore, src), `${src} is not in .dockerignore`);
      }
    }
  }
  for (const heavy of ['node_modules', 'dist', '.git'])
    t.true(dockerignoreMatches(ignore, heavy), `.dockerignore leaves out ${heavy}`);
});

test('both stages copy package.json and package-lock.json before npm ci; the runtime stage installs production dependencies only', (t) => {
  for (const s of stages) {
    const copied = copies(s)
      .filter((c) => !c.from)
      .flatMap((c) => c.sources);
    t.true(
      copied.includes('package.json') && copied.includes('package-lock.json'),
      `stage FROM ${s.from}${s.name ? ` AS ${s.name}` : ''} copies both package files`,
    );
    const copyAt = s.instructions.findIndex((i) => i.op === 'COPY' && i.args.includes('package-lock.json'));
    const ciAt = s.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    t.true(copyAt >= 0 && copyAt < ciAt, 'package files are copied before npm ci');
  }
  const ci = all(runtime, 'RUN')
    .map((r) => r.args)
    .find((r) => /\bnpm ci\b/.test(r))!;
  t.regex(ci, /--omit=dev/);
  t.false(
    all(runtime, 'RUN').some((r) => /\bnpm run build\b|\btsc\b/.test(r.args)),
    'nothing is compiled in the runtime stage',
  );
  // --ignore-scripts is safe: no production package has an install script.
  const withScripts = Object.entries(lock.packages)
    .filter(([k, v]) => k && !v.dev && v.hasInstallScript)
    .map(([k]) => k);
  t.deepEqual(withScripts, []);
  t.truthy(pkg.devDependencies.node, 'Node.js for local runs is a dev dependency…');
  t.falsy(pkg.dependencies.node, '…and not a production one: the image brings its own');
});

test('the build stage copies everything the build needs: the compile succeeds from those files alone and yields the entry point', async (t) => {
  t.timeout(5 * 60_000, 'compiling the operator');
  const app = await buildLikeTheImage();
  const fromBuild = copies(runtime).find((c) => c.from === build.name);
  t.truthy(fromBuild, 'the runtime stage copies from the build stage');
  t.deepEqual(fromBuild!.sources, [path.posix.join(buildWorkdir, 'dist')]);
  t.is(destination(runtimeWorkdir, 'dist', fromBuild!.dest), path.posix.join(runtimeWorkdir, 'dist'));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(repo, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { outDir: string };
  };
  t.is(tsconfig.compilerOptions.outDir, 'dist', 'npm run build writes dist/, which the runtime stage copies');
  t.is(entrypoint[0], 'node');
  const entry = path.join(app, entrypoint[1]!);
  t.true(fs.existsSync(entry), `${entrypoint[1]} exists after the build`);
});

test('the compiled operator imports only Node.js built-ins, production dependencies and files of dist/', async (t) => {
  t.timeout(5 * 60_000, 'compiling the operator');
  const dist = path.join(await buildLikeTheImage(), 'dist');
  const builtins = new Set(builtinModules);
  const problems: string[] = [];
  const files = (fs.readdirSync(dist, { recursive: true }) as string[]).filter((f) => f.endsWith('.js'));
  t.true(files.length > 10);
  for (const file of files) {
    const code = fs.readFileSync(path.join(dist, file), 'utf8');
    const specifiers = [
      ...code.matchAll(
        /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm,
      ),
    ].map((m) => m[1] ?? m[2] ?? m[3]!);
    for (const spec of specifiers) {
      if (spec.startsWith('.')) {
        if (!fs.existsSync(path.resolve(path.dirname(path.join(dist, file)), spec)))
          problems.push(`${file}: ${spec} does not exist in dist/`);
      } else if (spec.startsWith('node:') || builtins.has(spec)) {
        continue;
      } else {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(name in pkg.dependencies))
          problems.push(`${file}: imports ${name}, which is not a production dependency`);
      }
    }
  }
  t.deepEqual(problems, []);
});

test('the entry point runs on plain Node.js (no tsx): --help exits 0', async (t) => {
  t.timeout(5 * 60_000, 'compiling the operator');
  const app = await buildLikeTheImage();
  const out = execFileSync(process.execPath, entrypoint.slice(1).concat('--help'), {
    cwd: app,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  t.regex(out, /--metrics-bind-address/);
  t.regex(out, /--health-probe-bind-address/);
});

test('the Deployment runs what the image runs: command, ports, probes and user agree with the Dockerfile', (t) => {
  t.deepEqual(container.command, entrypoint, "the Deployment's command is the ENTRYPOINT");
  const exposed = one(runtime, 'EXPOSE')
    .split(/\s+/)
    .map((p) => Number(p.replace(/\/tcp$/, '')));
  t.deepEqual([...container.ports.map((p) => p.containerPort)].sort(), [...exposed].sort(), 'container ports = EXPOSE');
  const portOf = (ref: string | number) =>
    typeof ref === 'number' ? ref : container.ports.find((p) => p.name === ref)?.containerPort;
  t.is(container.livenessProbe.httpGet.path, '/healthz');
  t.is(container.readinessProbe.httpGet.path, '/readyz');
  // The operator's own defaults put the probes and metrics on those ports.
  const parsed = parseConfig([], {}, () => undefined);
  if (parsed.kind !== 'config') return t.fail(`the default configuration does not parse: ${JSON.stringify(parsed)}`);
  const port = (bind: string) => Number(bind.split(':').at(-1));
  t.is(portOf(container.livenessProbe.httpGet.port), port(parsed.config.healthProbeBindAddress));
  t.is(portOf(container.readinessProbe.httpGet.port), port(parsed.config.healthProbeBindAddress));
  t.is(container.ports.find((p) => p.name === 'metrics')?.containerPort, port(parsed.config.metricsBindAddress));
  t.true(
    exposed.includes(port(parsed.config.metricsBindAddress)) &&
      exposed.includes(port(parsed.config.healthProbeBindAddress)),
  );
  const user = one(runtime, 'USER').split(':')[0];
  t.is(Number(user), deployment.spec.template.spec.securityContext.runAsUser, "USER = the Deployment's runAsUser");
  t.not(Number(user), 0);
  const lastRun = runtime.instructions.map((i) => i.op).lastIndexOf('RUN');
  t.true(
    runtime.instructions.findIndex((i) => i.op === 'USER') > lastRun,
    'USER comes after the last RUN: install as root, run as the user',
  );
});
