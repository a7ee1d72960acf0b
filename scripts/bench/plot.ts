// An SVG of a results JSON, written by hand (no dependencies): latency percentiles of the operator against
// raw Vault issuance, and burst throughput per --concurrency against raw Vault at the same concurrency; with a
// peer in the run (`--peer eso`), a second row: both controllers' latency and burst rate, and the ratios
// Leasehold / peer of what the issue sets goals for.
//
//   node --import tsx scripts/bench/plot.ts bench/results/<timestamp>.json   → bench/results/<timestamp>.svg
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Summary {
  p50: number;
  p95: number;
  p99: number;
}

interface Results {
  startedAt?: string;
  mode?: string;
  machine?: { cpus?: number; cpuModel?: string; loadavgStart?: number[] };
  versions?: { vault?: string; vaultFlavor?: string; kubernetes?: string; postgres?: string };
  scenarios?: {
    latency?: {
      parameters?: { requests?: number };
      summary?: { approvalToSecret?: Summary; approvalToStatus?: Summary; rawVaultIssue?: Summary };
    };
    burst?: {
      parameters?: { requestsPerRun?: number };
      summary?: { runs?: Array<{ concurrency: number; grantsPerSecond: number; rawPerSecond: number }> };
    };
  };
  peers?: { eso?: { summary?: PeerSummary } };
}

interface PeerSide {
  p50?: number;
  p99?: number;
  credentialsPerSecond?: number;
  cpuMsPerCredential?: number;
  requestsPerCredential?: number;
  vaultCalls?: number;
}

interface PeerSummary {
  latency?: { credentials?: number; leasehold?: PeerSide; eso?: PeerSide };
  burst?: { credentials?: number; leasehold?: PeerSide; eso?: PeerSide };
  steady?: { leasehold?: { vaultCalls?: number }; eso?: { vaultCalls?: number } };
  memory?: Array<{ credentials: number; leasehold?: number; eso?: number }>;
}

const W = 900;
const H = 440;
const PANEL = { top: 70, bottom: 80, height: H - 70 - 80 };
const COLORS = { operator: '#2b6cb0', status: '#63b3ed', raw: '#dd6b20', peer: '#38a169' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(
  x: number,
  y: number,
  s: string,
  opts: { size?: number; anchor?: 'start' | 'middle' | 'end'; weight?: string; fill?: string } = {},
): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${opts.size ?? 12}" text-anchor="${opts.anchor ?? 'start'}"${opts.weight ? ` font-weight="${opts.weight}"` : ''} fill="${opts.fill ?? '#222'}">${esc(s)}</text>`;
}

/** A "nice" axis maximum and tick step for values up to `max`. */
function niceScale(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

interface Group {
  label: string;
  bars: Array<{ series: string; value: number; color: string }>;
}

/** A grouped bar chart in the box [x, x + width] with a y axis labelled `unit`. */
function barChart(
  x: number,
  width: number,
  title: string,
  unit: string,
  groups: Group[],
  format: (v: number) => string,
  notes: string[] = [],
  yOffset = 0,
): string {
  const out: string[] = [];
  const PANEL_TOP = PANEL.top + yOffset;
  const y0 = PANEL_TOP + PANEL.height;
  const max = Math.max(0, ...groups.flatMap((g) => g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))));
  const { top, step } = niceScale(max * 1.1);
  const scale = (v: number) => (v / top) * PANEL.height;
  out.push(text(x + width / 2, PANEL_TOP - 30, title, { size: 14, anchor: 'middle', weight: 'bold' }));
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = y0 - scale(v);
    out.push(`<line x1="${x}" y1="${y.toFixed(1)}" x2="${x + width}" y2="${y.toFixed(1)}" stroke="#e2e8f0"/>`);
    out.push(
      text(x - 6, y + 4, step >= 1 ? String(Math.round(v)) : format(v), { size: 10, anchor: 'end', fill: '#555' }),
    );
  }
  out.push(text(x - 40, PANEL_TOP - 10, unit, { size: 10, fill: '#555' }));
  out.push(`<line x1="${x}" y1="${y0}" x2="${x + width}" y2="${y0}" stroke="#444"/>`);
  const gw = width / Math.max(1, groups.length);
  for (const [gi, g] of groups.entries()) {
    const n = g.bars.length;
    const bw = Math.min(40, (gw * 0.8) / Math.max(1, n));
    const gx = x + gi * gw + (gw - bw * n) / 2;
    for (const [bi, b] of g.bars.entries()) {
      const v = Number.isFinite(b.value) ? b.value : 0;
      const h = scale(v);
      const bx = gx + bi * bw;
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${(y0 - h).toFixed(1)}" width="${(bw - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${b.color}"><title>${esc(`${g.label} ${b.series}: ${format(v)}`)}</title></rect>`,
      );
      out.push(text(bx + (bw - 3) / 2, y0 - h - 4, format(v), { size: 9, anchor: 'middle', fill: '#333' }));
    }
    out.push(text(x + gi * gw + gw / 2, y0 + 16, g.label, { size: 11, anchor: 'middle' }));
    if (notes[gi])
      out.push(text(x + gi * gw + gw / 2, y0 + 30, notes[gi]!, { size: 10, anchor: 'middle', fill: '#555' }));
  }
  return out.join('\n');
}

function legend(x: number, y: number, items: Array<[string, string]>): string {
  let lx = x;
  return items
    .map(([label, color]) => {
      const out = `<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${color}"/>${text(lx + 18, y, label, { size: 11 })}`;
      lx += 18 + label.length * 6.5 + 24;
      return out;
    })
    .join('\n');
}

export function renderSvg(r: Results): string {
  const parts: string[] = [];
  const lat = r.scenarios?.latency?.summary;
  const burstRuns = r.scenarios?.burst?.summary?.runs ?? [];
  const half = (W - 140) / 2;
  if (lat?.approvalToSecret && lat.rawVaultIssue) {
    const groups: Group[] = (['p50', 'p95', 'p99'] as const).map((q) => ({
      label: q,
      bars: [
        { series: 'operator: approval → Secret', value: lat.approvalToSecret![q], color: COLORS.operator },
        ...(lat.approvalToStatus
          ? [{ series: 'operator: approval → status', value: lat.approvalToStatus[q], color: COLORS.status }]
          : []),
        { series: 'raw Vault creds read', value: lat.rawVaultIssue![q], color: COLORS.raw },
      ],
    }));
    const ratios = (['p50', 'p95', 'p99'] as const).map(
      (q) => `${(lat.approvalToSecret![q] / lat.rawVaultIssue![q]).toFixed(1)}× raw`,
    );
    parts.push(
      barChart(
        70,
        half,
        `Latency (${r.scenarios?.latency?.parameters?.requests ?? '?'} requests, one at a time)`,
        'ms',
        groups,
        (v) => `${Math.round(v)}`,
        ratios,
      ),
    );
  } else {
    parts.push(text(70 + half / 2, H / 2, 'no latency scenario in this run', { anchor: 'middle', fill: '#888' }));
  }
  const bx = 70 + half + 70;
  if (burstRuns.length) {
    const groups: Group[] = burstRuns.map((run) => ({
      label: `--concurrency ${run.concurrency}`,
      bars: [
        { series: 'operator grants/s', value: run.grantsPerSecond, color: COLORS.operator },
        { series: 'raw Vault issues/s', value: run.rawPerSecond, color: COLORS.raw },
      ],
    }));
    const ratios = burstRuns.map((run) => `${(run.grantsPerSecond / run.rawPerSecond).toFixed(2)}× raw`);
    parts.push(
      barChart(
        bx,
        half,
        `Burst throughput (${r.scenarios?.burst?.parameters?.requestsPerRun ?? '?'} approved at once)`,
        'per second',
        groups,
        (v) => (v < 10 ? v.toFixed(1) : `${Math.round(v)}`),
        ratios,
      ),
    );
  } else {
    parts.push(text(bx + half / 2, H / 2, 'no burst scenario in this run', { anchor: 'middle', fill: '#888' }));
  }
  parts.push(
    legend(70, H - 18, [
      ['operator: approval → Secret / grants', COLORS.operator],
      ['operator: approval → status', COLORS.status],
      ['raw Vault, same role', COLORS.raw],
    ]),
  );
  const peer = r.peers?.eso?.summary;
  const height = peer ? 2 * H : H;
  if (peer) parts.push(peerRow(peer, half));
  const v = r.versions ?? {};
  const m = r.machine ?? {};
  const caption = `Leasehold bench ${r.mode ?? ''} ${r.startedAt ?? ''} · ${m.cpus ?? '?'} CPUs, load ${(m.loadavgStart ?? []).map((x) => x.toFixed(1)).join(' ')} · ${v.vaultFlavor ?? 'vault'} ${v.vault ?? ''}, kubernetes ${v.kubernetes ?? ''}, postgresql ${v.postgres ?? ''}`;
  parts.push(text(W / 2, 22, caption, { size: 11, anchor: 'middle', fill: '#555' }));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">\n<rect width="${W}" height="${height}" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

/** The peer row: latency and burst rate of both controllers, and Leasehold / peer for each goal of the issue. */
function peerRow(p: PeerSummary, half: number): string {
  const out: string[] = [];
  const L = p.latency?.leasehold;
  const E = p.latency?.eso;
  const B = p.burst;
  const groups: Group[] = [];
  for (const q of ['p50', 'p99'] as const)
    if (L?.[q] !== undefined && E?.[q] !== undefined)
      groups.push({
        label: `latency ${q} (ms)`,
        bars: [
          { series: 'Leasehold', value: L[q]!, color: COLORS.operator },
          { series: 'ESO', value: E[q]!, color: COLORS.peer },
        ],
      });
  if (B?.leasehold?.credentialsPerSecond !== undefined && B.eso?.credentialsPerSecond !== undefined)
    groups.push({
      label: `burst ${B.credentials ?? ''} (/s)`,
      bars: [
        { series: 'Leasehold', value: B.leasehold.credentialsPerSecond, color: COLORS.operator },
        { series: 'ESO', value: B.eso.credentialsPerSecond, color: COLORS.peer },
      ],
    });
  out.push(
    barChart(
      70,
      half,
      'Leasehold vs External Secrets Operator',
      'ms, /s',
      groups,
      (v) => v.toFixed(v < 10 ? 1 : 0),
      [],
      H,
    ),
  );
  // Ratios Leasehold / ESO against each goal (1.0 = parity).
  const ratios: Array<[string, number | undefined, string]> = [
    ['burst /s', safeRatio(B?.leasehold?.credentialsPerSecond, B?.eso?.credentialsPerSecond), '≥ 1'],
    ['CPU/cred', safeRatio(B?.leasehold?.cpuMsPerCredential, B?.eso?.cpuMsPerCredential), '≤ 1'],
    ['requests/cred', safeRatio(B?.leasehold?.requestsPerCredential, B?.eso?.requestsPerCredential), '≤ 1.5'],
    ['steady Vault calls', safeRatio(p.steady?.leasehold?.vaultCalls, p.steady?.eso?.vaultCalls), '≤ 0.5'],
  ];
  const top = p.memory?.filter((m) => m.leasehold && m.eso).at(-1);
  if (top) ratios.push([`RSS at ${top.credentials}`, safeRatio(top.leasehold, top.eso), '≤ 1']);
  const shown = ratios.filter((x) => x[1] !== undefined);
  out.push(
    barChart(
      70 + half + 70,
      half,
      'Leasehold / ESO (goal under each)',
      'ratio',
      shown.map(([label, value]) => ({
        label,
        bars: [{ series: 'Leasehold / ESO', value: value!, color: COLORS.operator }],
      })),
      (v) => `${v.toFixed(2)}×`,
      shown.map(([, , goal]) => goal),
      H,
    ),
  );
  out.push(
    legend(70, 2 * H - 18, [
      ['Leasehold', COLORS.operator],
      ['External Secrets Operator (VaultDynamicSecret)', COLORS.peer],
    ]),
  );
  return out.join('\n');
}

function safeRatio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

/** Writes `<json without .json>.svg` next to the results file; returns its path. */
export function plotFile(jsonPath: string): string {
  const results = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as Results;
  const out = jsonPath.replace(/\.json$/, '') + '.svg';
  fs.writeFileSync(out, renderSvg(results));
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node --import tsx scripts/bench/plot.ts bench/results/<timestamp>.json [...]\n');
    process.exit(2);
  }
  for (const f of files) console.log(plotFile(f));
}
