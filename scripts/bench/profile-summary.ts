// node --import tsx scripts/bench/profile-summary.ts <file.cpuprofile> [--from MS] [--to MS] [--top N] [--timeline]
//                                                     [--grants N] [--busiest MS]
// node --import tsx scripts/bench/profile-summary.ts bench/results/profiles/<timestamp> --window burst-c16
//
// Summarises a V8 CPU profile (`npm run bench -- --cpu-prof` writes one per operator process): where the
// busy time went, by package / source file (self time) and by function (self and total time), over the
// whole profile or a window of it. Times are milliseconds since the profile started.
//   --timeline      busy milliseconds per 100 ms, to find a scenario's window (e.g. the burst)
//   --busiest MS    picks the MS-long window with the most busy time (a burst, in a burst profile)
//   --callers TEXT  the call stacks (5 frames up) leading to functions whose label contains TEXT, by time
//   --callees TEXT  what the functions whose label contains TEXT spend their time in (total time per callee)
//   --grants N      divides every figure by N as well (CPU ms per grant)
//   --window LABEL  a measurement the benchmark recorded in the directory's windows.json (`latency`,
//                   `burst-c<concurrency>`): its operator's profile, its time window and its number of grants
// "Busy" is every sample but (idle); (garbage collector) and (program) (V8 and native code outside JS
// functions) are kept as their own rows.
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface Options {
  file: string;
  from?: number;
  to?: number;
  top: number;
  timeline: boolean;
  grants?: number;
  busiest?: number;
  window?: string;
  callers?: string;
  callees?: string;
}
interface Window {
  label: string;
  profile: string;
  startUs: number;
  endUs: number;
  grants: number;
}

function parse(argv: string[]): Options {
  const o: Options = { file: '', top: 25, timeline: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => Number(argv[++i]);
    if (a === '--from') o.from = num();
    else if (a === '--to') o.to = num();
    else if (a === '--top') o.top = num();
    else if (a === '--grants') o.grants = num();
    else if (a === '--busiest') o.busiest = num();
    else if (a === '--timeline') o.timeline = true;
    else if (a === '--window') o.window = argv[++i];
    else if (a === '--callers') o.callers = argv[++i];
    else if (a === '--callees') o.callees = argv[++i];
    else o.file = a;
  }
  if (!o.file) {
    process.stderr.write(
      'usage: profile-summary.ts <file.cpuprofile> [--from MS] [--to MS] [--top N] [--timeline] [--grants N] [--busiest MS]\n',
    );
    process.exit(2);
  }
  return o;
}

/** Where a frame's code lives: a package (`winston`, `@kubernetes/client-node`), a repository file, node:*, or V8. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:'))
    return url
      .replace(/^node:(internal\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/((?:lib|controllers|api|cmd)\/.*)$/.exec(url);
  return m ? m[1]! : path.basename(url);
}

// What a sample was doing, by the first rule (in this order) that matches a frame of its stack, leaf to root.
const CATEGORIES: Array<[string, (f: CallFrame, mod: string) => boolean]> = [
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  [
    'logging (winston, redaction)',
    (_f, m) =>
      m === 'winston' ||
      m === 'logform' ||
      m === 'lib/runtime/logging.js' ||
      m.startsWith('@colors') ||
      m === 'safe-stable-stringify',
  ],
  ['metrics (prom-client)', (_f, m) => m === 'prom-client'],
  [
    'watch streams (decode, cache)',
    (f, m) => m === 'lib/runtime/watch.js' || (m === '@kubernetes/client-node' && /watch/i.test(f.url)),
  ],
  [
    'Vault calls (node-vault, axios, https)',
    (_f, m) => ['node-vault', 'axios', 'follow-redirects', 'lib/vault/node-vault-client.js'].includes(m),
  ],
  [
    'Kubernetes requests (KubeClient, fetch, HTTP/2)',
    (_f, m) => m === 'lib/runtime/kube.js' || m === 'undici' || m === '@kubernetes/client-node',
  ],
  ['Events (recorder)', (_f, m) => m === 'lib/runtime/events.js'],
  ['DatabaseAccessRequest controller', (_f, m) => m.startsWith('controllers/databaseaccessrequest/')],
  ['other controllers/ and api/', (_f, m) => m.startsWith('controllers/') || m.startsWith('api/')],
  ['runtime (controller, work queue, status, locks)', (_f, m) => m.startsWith('lib/')],
  [
    'HTTP to Vault (node:https, TLS)',
    (_f, m) => m === 'node:_http_client' || m === 'node:_http_outgoing' || m === 'node:https' || m === 'node:tls',
  ],
  ['HTTP/2 to the apiserver (node:http2)', (_f, m) => m.startsWith('node:http2')],
];

function categoryOf(chain: CallFrame[]): string {
  for (const [name, match] of CATEGORIES) if (chain.some((f) => match(f, moduleOf(f.url, f.functionName)))) return name;
  const leaf = chain[0];
  return leaf && !leaf.url
    ? `other ${leaf.functionName.startsWith('(') ? leaf.functionName : '(native)'}`
    : 'other (node internals, microtasks)';
}

function label(f: CallFrame): string {
  const where = f.url ? `${moduleOf(f.url, f.functionName)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

function main(): void {
  const o = parse(process.argv.slice(2));
  let window: Window | undefined;
  if (o.window) {
    const dir = fs.statSync(o.file).isDirectory() ? o.file : path.dirname(o.file);
    const windows = JSON.parse(fs.readFileSync(path.join(dir, 'windows.json'), 'utf8')) as Window[];
    window = windows.find((w) => w.label === o.window);
    if (!window)
      throw new Error(`no window ${o.window} in ${dir}/windows.json (${windows.map((w) => w.label).join(', ')})`);
    o.file = path.join(dir, window.profile);
    o.grants ??= window.grants;
  }
  const p = JSON.parse(fs.readFileSync(o.file, 'utf8')) as Profile;
  if (window) {
    o.from = (window.startUs - p.startTime) / 1000;
    o.to = (window.endUs - p.startTime) / 1000;
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample i covers timeDeltas[i+1] (the gap to the next sample); close enough at a 1 ms interval.
  const times: number[] = [];
  let t = 0;
  for (const d of p.timeDeltas) times.push((t += d) / 1000);
  const dur = (i: number) => (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000;
  const isIdle = (id: number) => byId.get(id)!.callFrame.functionName === '(idle)';

  if (o.timeline) {
    const buckets = new Map<number, number>();
    p.samples.forEach((id, i) => {
      if (!isIdle(id))
        buckets.set(Math.floor(times[i]! / 100), (buckets.get(Math.floor(times[i]! / 100)) ?? 0) + dur(i));
    });
    for (const [b, ms] of [...buckets].sort((x, y) => x[0] - y[0]))
      if (ms >= 5)
        console.log(
          `${String(b * 100).padStart(7)} ms  ${ms.toFixed(0).padStart(3)} ms busy  ${'#'.repeat(Math.round(ms / 4))}`,
        );
    return;
  }

  let from = o.from ?? 0;
  let to = o.to ?? Infinity;
  if (o.busiest) {
    // Two pointers over the busy samples: the window of the given length holding the most busy time.
    let best = 0,
      bestStart = 0,
      sum = 0,
      j = 0;
    for (let i = 0; i < p.samples.length; i++) {
      if (!isIdle(p.samples[i]!)) sum += dur(i);
      while (times[i]! - times[j]! > o.busiest) {
        if (!isIdle(p.samples[j]!)) sum -= dur(j);
        j++;
      }
      if (sum > best) {
        best = sum;
        bestStart = times[j]!;
      }
    }
    from = bestStart;
    to = bestStart + o.busiest;
  }

  const self = new Map<number, number>();
  let busy = 0;
  p.samples.forEach((id, i) => {
    if (times[i]! < from || times[i]! > to || isIdle(id)) return;
    const d = dur(i);
    busy += d;
    self.set(id, (self.get(id) ?? 0) + d);
  });

  if (o.callers) {
    const stacks = new Map<string, number>();
    for (const [id, ms] of self) {
      const chain: string[] = [];
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n))
        chain.push(label(byId.get(n)!.callFrame));
      const at = chain.findIndex((l) => l.includes(o.callers!));
      if (at < 0) continue;
      const key = chain.slice(at, at + Number(process.env.DEPTH ?? 6)).join('\n      ← ');
      stacks.set(key, (stacks.get(key) ?? 0) + ms);
    }
    for (const [k, ms] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, o.top))
      console.log(`${ms.toFixed(1).padStart(8)} ms  ${k}`);
    return;
  }

  if (o.callees) {
    const callees = new Map<string, number>();
    let total = 0;
    for (const [id, ms] of self) {
      const chain: string[] = [];
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n))
        chain.push(label(byId.get(n)!.callFrame));
      const at = chain.findLastIndex((l) => l.includes(o.callees!));
      if (at < 0) continue;
      total += ms;
      const key = at === 0 ? '(self)' : chain[at - 1]!;
      callees.set(key, (callees.get(key) ?? 0) + ms);
    }
    console.log(
      `${total.toFixed(1).padStart(8)} ms${o.grants ? ` (${(total / o.grants).toFixed(2)} ms/grant)` : ''} in ${o.callees}`,
    );
    for (const [k, ms] of [...callees].sort((a, b) => b[1] - a[1]).slice(0, o.top))
      console.log(`${ms.toFixed(1).padStart(8)} ms${o.grants ? `  ${(ms / o.grants).toFixed(2)} ms/grant` : ''}  ${k}`);
    return;
  }

  const byModule = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  const totalByFn = new Map<string, number>();
  const totalByModule = new Map<string, number>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    const mod = moduleOf(f.url, f.functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + ms);
    selfByFn.set(label(f), (selfByFn.get(label(f)) ?? 0) + ms);
    // Total: every distinct function and module on the stack, once per sample.
    const fns = new Set<string>();
    const mods = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const cf = byId.get(n)!.callFrame;
      if (cf.functionName === '(root)') continue;
      fns.add(label(cf));
      if (cf.url) mods.add(moduleOf(cf.url, cf.functionName));
    }
    for (const fn of fns) totalByFn.set(fn, (totalByFn.get(fn) ?? 0) + ms);
    for (const m of mods) totalByModule.set(m, (totalByModule.get(m) ?? 0) + ms);
  }

  const per = (ms: number) => (o.grants ? `  ${(ms / o.grants).toFixed(2).padStart(6)} ms/grant` : '');
  const pct = (ms: number) => `${((100 * ms) / busy).toFixed(1).padStart(5)} %`;
  const print = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, o.top))
      console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}${per(ms)}  ${k}`);
  };
  console.log(
    `${path.basename(o.file)}: window ${from.toFixed(0)}–${Number.isFinite(to) ? to.toFixed(0) : (times.at(-1) ?? 0).toFixed(0)} ms, busy ${busy.toFixed(1)} ms${per(busy)}`,
  );
  const byCategory = new Map<string, number>();
  for (const [id, ms] of self) {
    const chain: CallFrame[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) chain.push(byId.get(n)!.callFrame);
    const c = categoryOf(chain);
    byCategory.set(c, (byCategory.get(c) ?? 0) + ms);
  }
  print('by activity (first match, leaf to root, in the order listed in the source)', byCategory);
  print('self time by module', byModule);
  print('total time by module (on the stack)', totalByModule);
  print('self time by function', selfByFn);
  print('total time by function', totalByFn);
}

main();
