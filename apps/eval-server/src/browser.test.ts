/**
 * Browser test: Debian's Chromium, driven by playwright-core, opens the dashboard of a
 * seeded run and checks that the metric curves, IoU bars, expert heatmap, LInCo chart and
 * the three.js point-cloud view actually drew pixels; saves a screenshot.
 * Skips, saying why, where /usr/bin/chromium is missing (apt-get install -y chromium).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
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
    expect(Object.keys(inked).sort()).toEqual(['expert-heatmap', 'iou-chart', 'linco-chart-0', 'loss', 'lr']);
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
