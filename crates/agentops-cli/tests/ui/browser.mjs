// Drives `agentops ui` in headless Chromium (the distribution's package,
// through puppeteer-core: no browser download) and prints one JSON object
// with what it saw; crates/agentops-cli/tests/ui.rs asserts on it.
//
// Input, as one JSON argument: url (with ?token=), chromium, shots (a
// directory for screenshots), bin and repo (to append a journal event for
// the live test), hook_input (a PostToolUse hook event), paused_run,
// session, query.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import path from "node:path";

const input = JSON.parse(process.argv[2]);
const require = createRequire(path.join(process.env.AGENTOPS_PUPPETEER, "node_modules", "x.js"));
const puppeteer = require("puppeteer-core");

const out = { pages: {}, console_errors: [], screenshots: [] };
const origin = new URL(input.url).origin;

const browser = await puppeteer.launch({
  executablePath: input.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  page.on("console", (m) => {
    if (m.type() === "error") out.console_errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => out.console_errors.push(`${page.url()}: ${e.message}`));
  // A poll cut short by a navigation is aborted, not failed.
  page.on("requestfailed", (r) => {
    if (r.failure()?.errorText !== "net::ERR_ABORTED") out.console_errors.push(`${page.url()}: request failed ${r.url()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) out.console_errors.push(`${page.url()}: HTTP ${r.status()} for ${r.url()}`);
  });
  async function shot(name) {
    const file = path.join(input.shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
  }
  const text = (sel) => page.$eval(sel, (e) => e.textContent.trim()).catch(() => null);
  const count = (sel) => page.$$eval(sel, (e) => e.length);

  // The token URL: the cookie is set, the token leaves the address bar.
  await page.goto(input.url, { waitUntil: "load" });
  const cookies = await browser.cookies();
  out.cookie = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  out.pages.runs = {
    url: page.url(),
    rows: await count("tr[data-run]"),
    first_status: await page.$eval("tr[data-run]", (e) => e.dataset.status).catch(() => null),
    title: await page.title(),
  };
  await shot("runs");

  // Run detail: the waterfall.
  await page.goto(`${origin}/runs/${input.paused_run}`, { waitUntil: "load" });
  out.pages.run = {
    bars: await count("#waterfall rect.span"),
    rows: await count("#waterfall tr.span-row"),
    declared: await page.$eval("#waterfall", (e) => Number(e.dataset.spans)).catch(() => null),
    kinds: await page.$$eval("#waterfall tr.span-row", (rs) => [...new Set(rs.map((r) => r.dataset.kind))].sort()),
    tooltip: await page.$eval("#waterfall rect.span title", (e) => e.textContent).catch(() => null),
    pending: await count("[data-pending]"),
    gates: await count("tr.gate-row"),
    checkpoints: await count("tr.checkpoint"),
  };
  await shot("run");

  await page.goto(`${origin}/sessions`, { waitUntil: "load" });
  out.pages.sessions = { rows: await count("tr[data-session]") };
  await shot("sessions");
  await page.goto(`${origin}/sessions/${encodeURIComponent(input.session)}`, { waitUntil: "load" });
  out.pages.session = {
    bars: await count("#waterfall rect.span"),
    guard: await count("#guard rect"),
    denials: await count("tr.denial"),
  };
  await shot("session");

  await page.goto(`${origin}/cost?since=30d`, { waitUntil: "load" });
  out.pages.cost = {
    total: await page.$eval("#cost-total", (e) => Number(e.dataset.total)).catch(() => null),
    charts: await count("figure.chart"),
    bars: await count("figure.chart rect"),
    tables: await page.$$eval("table.by", (ts) => ts.map((t) => t.dataset.by)),
  };
  await shot("cost");

  // Knowledge: search through the form, open the first hit.
  await page.goto(`${origin}/knowledge`, { waitUntil: "load" });
  await page.type("input[name=q]", input.query);
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("form.search button")]);
  out.pages.knowledge = { ids: await page.$$eval("li.hit", (h) => h.map((x) => x.dataset.id)) };
  await shot("knowledge");
  if (out.pages.knowledge.ids.length > 0) {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("li.hit a")]);
    out.pages.entry = {
      title: await text("h1"),
      commits: await count("#history tr.commit"),
      utility: await text("#utility"),
      body: await text("#entry-body"),
    };
    await shot("entry");
  }

  await page.goto(`${origin}/alerts`, { waitUntil: "load" });
  out.pages.alerts = { firing: await page.$eval("#firing", (e) => Number(e.dataset.firing)).catch(() => null), rules: await count("tr.alert") };
  await shot("alerts");

  // Live: a hook event lands in the journal; the sessions list shows it
  // without a reload.
  await page.goto(`${origin}/sessions`, { waitUntil: "load" });
  const sel = `tr[data-session="${input.session}"] td.tools`;
  const before = await text(sel);
  await new Promise((r) => setTimeout(r, 700));
  execFileSync(input.bin, ["hook", "claude"], { cwd: input.repo, input: input.hook_input });
  const t0 = Date.now();
  let after = before;
  while (Date.now() - t0 < 5000) {
    after = await text(sel);
    if (after !== before) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  out.live = { before, after, ms: Date.now() - t0, reloaded: false };
  out.live.reloaded = (await page.evaluate(() => performance.getEntriesByType("navigation").length)) !== 1;

  // Approve the pending approval: the run resumes and completes.
  await page.goto(`${origin}/runs/${input.paused_run}`, { waitUntil: "load" });
  const approve = await page.$("button[data-action=approve]");
  out.approve = { button: approve !== null };
  if (approve) {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), approve.click()]);
    out.approve.note = await text("#note");
    const t1 = Date.now();
    let status = null;
    while (Date.now() - t1 < 90000) {
      await page.goto(`${origin}/runs?status=`, { waitUntil: "load" });
      status = await page.$eval(`tr[data-run="${input.paused_run}"]`, (e) => e.dataset.status).catch(() => null);
      if (status === "completed" || status === "failed") break;
      await new Promise((r) => setTimeout(r, 300));
    }
    out.approve.status = status;
    out.approve.ms = Date.now() - t1;
    await page.goto(`${origin}/runs/${input.paused_run}`, { waitUntil: "load" });
    out.approve.bars_after = await count("#waterfall rect.span");
    await shot("run-after-approval");
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
