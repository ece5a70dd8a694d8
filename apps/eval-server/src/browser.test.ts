/**
 * Browser test: Debian's Chromium, driven by playwright-core, opens the dashboard of a
 * seeded run and checks that the metric curves, IoU bars, expert heatmap, LInCo chart, the
 * LInCo analysis report and the three.js point-cloud view actually drew pixels; compares runs
 * (two lines, the config diff, a deep link), smooths and log-scales curves, draws one line per
 * series key, renders Chinese labels with real glyphs (Debian's fonts-noto-cjk), filters the
 * run list; saves screenshots in test-output/.
 * Skips, saying why, where /usr/bin/chromium is missing (apt-get install -y chromium).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, TOKEN, call, seedSeries, startServer } from './test-support.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) console.log(`browser test skipped: ${CHROMIUM} is missing (install Debian's package: apt-get install -y chromium)`);

export const SCREENSHOT = fileURLToPath(new URL('../test-output/dashboard.png', import.meta.url));
const shot = (name: string) => fileURLToPath(new URL(`../test-output/${name}.png`, import.meta.url));

let server: RunningServer;
let browser: BrowserContext | undefined;
/** A run with a million-point series, written before the server starts. */
let bigRun: string;
const BIG = 1_000_000;
const SPIKE = 654_321;

/** A small segmented "room": a floor, two walls and a box, 4 classes. */
function roomCloud() {
  const positions: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const u = (i * 0.6180339) % 1;
    const v = (i * 0.7548776) % 1;
    const kind = i % 4;
    if (kind === 0) positions.push(u * 4, v * 3, 0);
    else if (kind === 1) positions.push(u * 4, 0, v * 2.5);
    else if (kind === 2) positions.push(0, u * 3, v * 2.5);
    else positions.push(1.5 + u * 0.8, 1 + v * 0.8, (u + v) * 0.4);
    labels.push(kind);
  }
  return { classes: ['floor', 'wall', 'column', 'table'], positions, labels, predictions: labels.map((l, i) => (i % 17 === 0 ? (l + 1) % 4 : l)) };
}

async function seedRun(): Promise<string> {
  const id = (await call(server, 'POST', '/api/runs', { body: { name: 'browser test', kind: 'pointcloud', config: { epochs: 3 } } })).body.id as string;
  const points = [];
  for (let step = 1; step <= 60; step++) {
    points.push({ step, name: 'loss', value: 2 * Math.exp(-step / 20) + 0.1 });
    points.push({ step, name: 'lr', value: 0.01 * Math.min(1, step / 10) });
  }
  await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } });
  const cloud = new TextEncoder().encode(JSON.stringify(roomCloud()));
  expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/room.points.json`, { raw: cloud })).status).toBe(201);
  const classes = [
    { name: 'floor', iou: 0.91 },
    { name: 'wall', iou: 0.78 },
    { name: 'column', iou: 0.42 },
    { name: 'table', iou: 0.63 },
  ];
  await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { miou: 0.685, classes, pointsArtifact: 'room.points.json' } });
  await call(server, 'POST', `/api/runs/${id}/results/moe`, {
    body: { layers: [0, 1, 2].map((layer) => ({ layer, load: Array.from({ length: 8 }, (_, e) => 1 + ((e * (layer + 2)) % 5)) })) },
  });
  await call(server, 'POST', `/api/runs/${id}/results/linco`, {
    body: {
      metric: 'term',
      confidence: 0.95,
      baseline: { value: 0.22, lo: 0.18, hi: 0.26 },
      overall: { value: 0.31, lo: 0.25, hi: 0.37 },
      groups: [
        ...['civil', 'criminal', 'administrative'].map((group, i) => ({ group, value: 0.2 + 0.1 * i, lo: 0.12 + 0.1 * i, hi: 0.3 + 0.1 * i })),
        { group: 'severity=light', value: 0.35, n: 40 },
      ],
    },
  });
  // The report `kiln linco analyze` uploads: its view draws tables and interval charts.
  const report = readFileSync(new URL('../test-fixtures/linco-report.json', import.meta.url));
  expect((await call(server, 'PUT', `/api/runs/${id}/artifacts/linco-report.json`, { raw: new Uint8Array(report) })).status).toBe(201);
  return id;
}

beforeAll(async () => {
  if (!available) return;
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-eval-browser-'));
  bigRun = seedSeries(dataDir, 'loss', BIG, SPIKE);
  server = await startServer([], { dataDir });
  // A fresh profile each run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'kiln-chromium-')), {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 1800 },
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // WebGL on the CPU (SwiftShader) now that --disable-gpu removes the GPU path.
      '--enable-unsafe-swiftshader',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe.skipIf(!available)('dashboard in Chromium', () => {
  it('renders curves, bars, heatmap, intervals and the 3-D view', async () => {
    const id = await seedRun();
    const page = await browser!.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    // Loopback only: refuse any request that would leave this server.
    await page.route('**/*', (route) => (route.request().url().startsWith(server.url) ? route.continue() : route.abort()));
    await page.goto(`${server.url}/#run=${id}`);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
    await page.waitForSelector('#cloud-view[data-points]', { timeout: 30_000 });
    await page.waitForTimeout(500); // a few animation frames

    // 2-D canvases: count pixels that are not the white background.
    const inked = await page.evaluate(() => {
      const out: Record<string, number> = {};
      for (const canvas of Array.from(document.querySelectorAll('canvas'))) {
        if (canvas.id === 'cloud-view') continue;
        const ctx = canvas.getContext('2d')!;
        const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i]! < 240 || data[i + 1]! < 240 || data[i + 2]! < 240) n++;
        out[canvas.dataset.metric ?? canvas.id] = n;
      }
      return out;
    });
    expect(Object.keys(inked).sort()).toEqual([
      'expert-heatmap',
      'iou-chart',
      'linco-chart-0',
      'linco-report-debias',
      'linco-report-groups',
      'linco-report-periods',
      'linco-report-severity',
      'loss',
      'lr',
    ]);
    expect(await page.textContent('[data-table="groups"] tr:nth-child(2) td')).toBe('region');
    expect(await page.textContent('.linco-data')).toContain('48 records, 45 cases');
    for (const [name, n] of Object.entries(inked)) expect(n, name).toBeGreaterThan(500);

    // The WebGL view: copy it onto a 2-D canvas and count coloured (point) pixels, i.e.
    // pixels that differ from the dark clear colour.
    const cloud = await page.evaluate(() => {
      const src = document.getElementById('cloud-view') as HTMLCanvasElement;
      const copy = document.createElement('canvas');
      copy.width = src.width;
      copy.height = src.height;
      const ctx = copy.getContext('2d')!;
      ctx.drawImage(src, 0, 0);
      const { data } = ctx.getImageData(0, 0, copy.width, copy.height);
      let points = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 0x11) + Math.abs(data[i + 1]! - 0x15) + Math.abs(data[i + 2]! - 0x1c) > 60) points++;
      const gl = src.getContext('webgl2') ?? src.getContext('webgl');
      return { points, total: copy.width * copy.height, renderer: gl ? String(gl.getParameter(gl.RENDERER)) : 'none' };
    });
    console.log(`3-D view: ${cloud.points} of ${cloud.total} pixels show points (WebGL renderer: ${cloud.renderer}); 2-D canvases: ${JSON.stringify(inked)}`);
    expect(cloud.points).toBeGreaterThan(1000);
    expect(await page.textContent('.miou')).toContain('mIoU 68.50');
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(consoleErrors).toEqual([]);
  });
});

describe.skipIf(!available)('a million-point run in Chromium', () => {
  it('draws the reduction, then fetches only new points on each refresh', async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const metricRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/metrics')) metricRequests.push(new URL(r.url()).search);
    });
    await page.route('**/*', (route) => (route.request().url().startsWith(server.url) ? route.continue() : route.abort()));
    await page.goto(`${server.url}/#run=${bigRun}`);
    await page.waitForSelector('canvas[data-metric="loss"][data-rendered]', { timeout: 60_000 });
    const first = await page.$eval('canvas[data-metric="loss"]', (c) => ({ rendered: Number((c as HTMLCanvasElement).dataset.rendered), total: Number((c as HTMLCanvasElement).dataset.total) }));
    expect(first.total).toBe(BIG);
    expect(first.rendered).toBeLessThanOrEqual(4000);
    expect(metricRequests).toEqual(['?name=loss&maxPoints=4000']);

    // 50 new steps: the next refresh (every 5 s) asks only for what follows the last step held
    await call(server, 'POST', `/api/runs/${bigRun}/metrics`, { body: { points: Array.from({ length: 50 }, (_, i) => ({ step: BIG + i, name: 'loss', value: 0.5 })) } });
    await page.waitForFunction((want) => Number((document.querySelector('canvas[data-metric="loss"]') as HTMLCanvasElement).dataset.total) === want, BIG + 50, { timeout: 20_000 });
    expect(metricRequests.slice(1)).toEqual([`?name=loss&after=${BIG - 1}&limit=10000`]);
    expect(Number(await page.$eval('canvas[data-metric="loss"]', (c) => (c as HTMLCanvasElement).dataset.rendered))).toBe(first.rendered + 50);

    // and the chart itself draws a million raw points (the spread Math.min(...values) threw past ~150k)
    // (A string: vitest would rewrite a dynamic import inside a function it compiles.)
    const drawn = (await page.evaluate(`(async () => {
      const { lineChart } = await import('/charts.js');
      const canvas = document.createElement('canvas');
      canvas.width = 600;
      canvas.height = 200;
      document.body.append(canvas);
      const n = ${BIG};
      const steps = new Array(n);
      const values = new Array(n);
      for (let i = 0; i < n; i++) {
        steps[i] = i;
        values[i] = i === 500000 ? 50 : Math.sin(i / 5000);
      }
      const t0 = performance.now();
      lineChart(canvas, { title: 'a million points', steps, values });
      const ms = performance.now() - t0;
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let inked = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240) inked++;
      return { ms, inked };
    })()`)) as { ms: number; inked: number };
    console.log(`a million points drawn in ${drawn.ms.toFixed(0)} ms, ${drawn.inked} pixels inked`);
    expect(drawn.inked).toBeGreaterThan(2000);
    expect(errors).toEqual([]);
  });

  it('asks for the token when reads need it', async () => {
    const guarded = await startServer(['--read-token']);
    try {
      await call(guarded, 'POST', '/api/runs', { body: { name: 'private run' } });
      const page = await browser!.newPage();
      await page.route('**/*', (route) => (route.request().url().startsWith(guarded.url) ? route.continue() : route.abort()));
      await page.goto(`${guarded.url}/`);
      await page.waitForSelector('body[data-state="token"]', { timeout: 30_000 });
      expect(await page.isVisible('#token-form')).toBe(true);
      await page.fill('#token-input', TOKEN);
      await page.click('#token-form button');
      await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
      expect(await page.textContent('#runs')).toContain('private run');
    } finally {
      await guarded.stop();
    }
  });
});

/** Pixels of a canvas near an RGB colour (the lines of one run), counted in the page. */
async function colourPixels(page: import('playwright-core').Page, selector: string, rgb: [number, number, number]): Promise<number> {
  return page.$eval(
    selector,
    (c, want) => {
      const canvas = c as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - want[0]) + Math.abs(data[i + 1]! - want[1]) + Math.abs(data[i + 2]! - want[2]) < 60) n++;
      return n;
    },
    rgb,
  );
}

const T0 = Date.UTC(2026, 11, 3, 9, 0, 0);
const ORANGE: [number, number, number] = [0xc2, 0x41, 0x0c]; // PALETTE[0]
const BLUE: [number, number, number] = [0x25, 0x63, 0xeb]; // PALETTE[1]

describe.skipIf(!available)('comparing runs, curve controls, series keys and Chinese text in Chromium', () => {
  let csp: string;
  let noCsp: string;
  let judges: string;
  let experts: string;

  /** A point-cloud run: a noisy loss over three decades, lr, IoU per class. */
  async function pointcloudRun(name: string, csp: boolean, scale: number): Promise<string> {
    const id = (await call(server, 'POST', '/api/runs', { body: { name, kind: 'pointcloud', config: { model: { csp, channels: [32, 64] }, lr: 0.01, seed: 1 } } })).body.id as string;
    const points = [];
    for (let step = 1; step <= 200; step++) {
      // logged a second apart (the wall-time axis), the second run starting 100 s later
      const time = T0 + (csp ? 0 : 100_000) + step * 1000;
      points.push({ step, name: 'loss', value: scale * 100 * Math.exp(-step / 30) * (1 + 0.4 * Math.sin(step * 1.7)) + 0.05, time });
      points.push({ step, name: 'lr', value: 0.01, time });
    }
    await call(server, 'POST', `/api/runs/${id}/metrics`, { body: { points } });
    const classes = ['floor', 'wall', 'chair'].map((c, i) => ({ name: c, iou: Number((0.9 - 0.2 * i - (csp ? 0 : 0.05)).toFixed(2)) }));
    await call(server, 'POST', `/api/runs/${id}/results/pointcloud`, { body: { miou: csp ? 0.7 : 0.65, classes } });
    if (csp) expect((await call(server, 'PATCH', `/api/runs/${id}`, { body: { tags: ['csp', 'ablation'], note: 'with CSP' } })).status).toBe(200);
    return id;
  }

  beforeAll(async () => {
    if (!available) return;
    csp = await pointcloudRun('CSP on', true, 1);
    noCsp = await pointcloudRun('CSP off', false, 1.5);
    // A LInCo run: each judge's training loss is its own series (a series key per judge).
    judges = (await call(server, 'POST', '/api/runs', { body: { name: 'LInCo 地区', kind: 'linco', config: { groupBy: 'region' } } })).body.id as string;
    const points = [];
    for (const [j, region] of ['浙江省', '江苏省'].entries()) {
      for (let epoch = 1; epoch <= 12; epoch++) points.push({ step: epoch, name: 'loss', key: `judge=region:${region}`, value: (1 + j) * Math.exp(-epoch / 4) + 0.1 });
    }
    await call(server, 'POST', `/api/runs/${judges}/metrics`, { body: { points } });
    await call(server, 'POST', `/api/runs/${judges}/results/linco`, {
      body: {
        metric: 'charge',
        confidence: 0.95,
        overall: { value: 0.31, lo: 0.25, hi: 0.37 },
        groups: [
          { group: 'region=浙江省', value: 0.28, lo: 0.2, hi: 0.36 },
          { group: 'region=江苏省', value: 0.34, lo: 0.27, hi: 0.41 },
          { group: '盗窃罪', value: 0.3, n: 40 },
        ],
      },
    });
    // A MoE run with its expert load recorded three times during training.
    experts = (await call(server, 'POST', '/api/runs', { body: { name: 'router', kind: 'moe' } })).body.id as string;
    for (const step of [100, 200, 300]) {
      const layers = [0, 1].map((layer) => ({ layer, load: Array.from({ length: 4 }, (_, e) => (e === step / 100 ? 4 : 1)) }));
      await call(server, 'POST', `/api/runs/${experts}/results/moe`, { body: { step, layers } });
    }
  });

  async function open(hash: string) {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route('**/*', (route) => (route.request().url().startsWith(server.url) ? route.continue() : route.abort()));
    await page.goto(`${server.url}/${hash}`);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
    return { page, errors };
  }

  it('selecting two runs shows two lines, their final values, the config keys that differ and IoU side by side; the link restores it', async () => {
    const { page, errors } = await open(`#run=${csp}`);
    await page.click(`#runs li[data-id="${csp}"] input.pick`);
    await page.click(`#runs li[data-id="${noCsp}"] input.pick`);
    await page.waitForSelector(`#run[data-comparing="${csp},${noCsp}"]`, { timeout: 30_000 });
    const link = page.url();
    expect(new URL(link).hash).toBe(`#compare=${encodeURIComponent(`${csp},${noCsp}`)}`);

    const check = async (p: typeof page) => {
      await p.waitForSelector('canvas[data-metric="loss"][data-lines="2"]', { timeout: 30_000 });
      expect(await colourPixels(p, 'canvas[data-metric="loss"]', ORANGE), 'first run').toBeGreaterThan(300);
      expect(await colourPixels(p, 'canvas[data-metric="loss"]', BLUE), 'second run').toBeGreaterThan(300);
      const diff = await p.$$eval('table.config-diff tbody tr', (rows) => rows.map((r) => Array.from(r.children, (c) => c.textContent)));
      expect(diff).toEqual([['model.csp', 'true', 'false']]); // lr, seed and channels are the same: not shown
      const finals = await p.$$eval('table.finals-table tbody tr', (rows) => rows.map((r) => r.children[0]!.textContent));
      expect(finals).toEqual(['CSP on', 'CSP off']);
      const iou = await p.$$eval('table.iou-compare tbody tr', (rows) => rows.map((r) => Array.from(r.children, (c) => c.textContent)));
      expect(iou).toEqual([
        ['mIoU', '0.7', '0.65'],
        ['floor', '0.9', '0.85'],
        ['wall', '0.7', '0.65'],
        ['chair', '0.5', '0.45'],
      ]);
      expect(await p.textContent('.run-legend')).toContain('CSP off');
    };
    await check(page);
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: shot('compare-two-runs'), fullPage: true });
    // the link, opened in a new tab, restores the comparison
    const again = await open(new URL(link).hash);
    await again.page.waitForSelector(`#run[data-comparing="${csp},${noCsp}"]`, { timeout: 30_000 });
    await check(again.page);
    expect([...errors, ...again.errors]).toEqual([]);
  });

  it('smooths (EMA) and log-scales curves from the URL, and reads values out under the pointer', async () => {
    const plain = await open(`#run=${csp}`);
    await plain.page.waitForSelector('canvas[data-metric="loss"][data-lines]', { timeout: 30_000 });
    const plainPixels = await plain.page.$eval('canvas[data-metric="loss"]', (c) => (c as HTMLCanvasElement).toDataURL());
    const { page, errors } = await open(`#run=${csp}&smooth=0.9&log=1`);
    await page.waitForSelector('canvas[data-metric="loss"][data-lines]', { timeout: 30_000 });
    expect(await page.inputValue('#smoothing')).toBe('0.9');
    expect(await page.isChecked('#log-scale')).toBe(true);
    // what the chart drew: the smoothed line, on a log axis (ticks are powers of ten)
    const drawn = await page.$eval('canvas[data-metric="loss"]', (c) => {
      const chart = (c as HTMLCanvasElement & { chart: { lines: { values: number[]; smoothed?: number[]; raw: number[] }[] } }).chart;
      const l = chart.lines[0]!;
      return { smoothed: l.smoothed?.slice(0, 3), values: l.values.slice(0, 3), raw0: l.raw[0] };
    });
    expect(drawn.smoothed![0]).toBeCloseTo(drawn.values[0]!, 9); // debiased: the first point is itself
    expect(drawn.smoothed![1]).toBeCloseTo((0.9 * 0.1 * drawn.values[0]! + 0.1 * drawn.values[1]!) / (1 - 0.81), 9);
    expect(drawn.raw0).toBeCloseTo(Math.log10(drawn.values[0]!), 9);
    expect(await page.$eval('canvas[data-metric="loss"]', (c) => (c as HTMLCanvasElement).toDataURL())).not.toBe(plainPixels);
    // hover: the read-out names the step and both values
    const box = (await page.$('canvas[data-metric="loss"]'))!;
    const b = (await box.boundingBox())!;
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
    await page.waitForSelector('#readout:not([hidden])');
    expect(await page.textContent('#readout')).toMatch(/^loss\nloss: step \d+ = [\d.e+-]+ \(smoothed [\d.e+-]+\)$/);
    await page.screenshot({ path: shot('smoothed-log-curve'), fullPage: true });
    // the controls change the URL, so the view can be shared
    await page.uncheck('#log-scale');
    expect(new URL(page.url()).hash).toBe(`#run=${csp}&smooth=0.9`);
    // x by wall time: the axis spans the times the points were logged, the read-out says when
    await page.selectOption('#x-axis', 'time');
    expect(new URL(page.url()).hash).toBe(`#run=${csp}&smooth=0.9&x=time`);
    const span = await page.$eval('canvas[data-metric="loss"]', (c) => {
      const chart = (c as HTMLCanvasElement & { chart: { x: string; x0: number; x1: number } }).chart;
      return [chart.x, chart.x0, chart.x1];
    });
    expect(span).toEqual(['time', T0 + 1000, T0 + 200_000]);
    await page.mouse.move(b.x + b.width / 2 + 1, b.y + b.height / 2);
    expect(await page.textContent('#readout')).toMatch(/^loss\nloss: step \d+ at .+ = [\d.e+-]+ \(smoothed [\d.e+-]+\)$/);
    expect([...plain.errors, ...errors]).toEqual([]);
  });

  it('draws one line per series key, and Chinese labels with real glyphs', async () => {
    const { page, errors } = await open(`#run=${judges}`);
    await page.waitForSelector('canvas[data-metric="loss"][data-lines="2"]', { timeout: 30_000 });
    expect(await colourPixels(page, 'canvas[data-metric="loss"]', ORANGE)).toBeGreaterThan(200);
    expect(await colourPixels(page, 'canvas[data-metric="loss"]', BLUE)).toBeGreaterThan(200);
    await page.waitForSelector('#linco-chart-0[data-rendered="3"]');
    // The font stack names CJK faces, and the one installed (fonts-noto-cjk) draws real
    // glyphs: two different characters give different, non-empty pixels, and neither looks
    // like the box of a character no font has.
    // (A string: vitest would rewrite a dynamic import inside a function it compiles.)
    const glyphs = (await page.evaluate(`(async () => {
      const { FONT_STACK } = await import('/charts.js');
      await document.fonts.load('32px ' + FONT_STACK, '浙江省');
      const draw = (text) => {
        const c = document.createElement('canvas');
        c.width = 64;
        c.height = 48;
        const ctx = c.getContext('2d');
        ctx.font = '32px ' + FONT_STACK;
        ctx.fillText(text, 4, 38);
        const { data } = ctx.getImageData(0, 0, c.width, c.height);
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
        return { width: ctx.measureText(text).width, inked, url: c.toDataURL() };
      };
      const zhe = draw('浙');
      const jiang = draw('江');
      const missing = draw('\\u{10FFFD}');
      return {
        stack: FONT_STACK,
        cssStack: getComputedStyle(document.body).fontFamily,
        zhe: { width: zhe.width, inked: zhe.inked },
        jiang: { width: jiang.width, inked: jiang.inked },
        different: zhe.url !== jiang.url,
        notBoxes: zhe.url !== missing.url && jiang.url !== missing.url,
        fontAvailable: document.fonts.check('32px "Noto Sans CJK SC"', '浙'),
      };
    })()`)) as { stack: string; cssStack: string; zhe: { width: number; inked: number }; jiang: { width: number; inked: number }; different: boolean; notBoxes: boolean; fontAvailable: boolean };
    console.log(`CJK glyphs: ${JSON.stringify(glyphs)}`);
    expect(glyphs.stack).toContain('Noto Sans CJK SC');
    expect(glyphs.cssStack).toContain('Noto Sans CJK SC');
    expect(glyphs.fontAvailable).toBe(true);
    expect(glyphs.zhe.width).toBeGreaterThan(10);
    expect(glyphs.zhe.inked).toBeGreaterThan(50);
    expect(glyphs.jiang.inked).toBeGreaterThan(50);
    expect(glyphs.different).toBe(true);
    expect(glyphs.notBoxes).toBe(true);
    await page.screenshot({ path: shot('per-judge-series'), fullPage: true });
    await (await page.$('[data-panel="linco"]'))!.screenshot({ path: shot('linco-chinese-labels') });
    expect(errors).toEqual([]);
  });

  it('filters the run list by kind, name, tag and config value; shows the expert load at each recorded step', async () => {
    const { page, errors } = await open(`#run=${experts}`);
    const listed = () => page.$$eval('#runs li', (lis) => lis.map((li) => li.querySelector('strong')!.textContent));
    await page.fill('#filter-tag', 'csp');
    expect(await listed()).toEqual(['CSP on']);
    await page.fill('#filter-tag', '');
    await page.fill('#filter-config', 'model.csp=false');
    expect(await listed()).toEqual(['CSP off']);
    await page.fill('#filter-config', '');
    await page.selectOption('#filter-kind', 'linco');
    expect(await listed()).toEqual(['LInCo 地区']);
    await page.selectOption('#filter-kind', '');
    await page.fill('#filter-text', 'router');
    expect(await listed()).toEqual(['router']);

    await page.waitForSelector('#expert-heatmap[data-step="300"]');
    expect(await page.isVisible('#expert-step')).toBe(true);
    expect(await page.textContent('.expert-step-label')).toBe('step 300 (3 of 3 recorded)');
    const atEnd = await page.$eval('#expert-heatmap', (c) => (c as HTMLCanvasElement).toDataURL());
    await page.$eval('#expert-step', (el) => {
      const slider = el as HTMLInputElement;
      slider.value = '0';
      slider.dispatchEvent(new Event('input'));
    });
    expect(await page.textContent('.expert-step-label')).toBe('step 100 (1 of 3 recorded)');
    expect(await page.$eval('#expert-heatmap', (c) => (c as HTMLCanvasElement).toDataURL())).not.toBe(atEnd);
    expect(errors).toEqual([]);
  });
});
