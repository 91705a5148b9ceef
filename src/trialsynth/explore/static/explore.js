// trialsynth explore: the page draws what the server computed; it computes no statistic.
// Everything a user (or a data file) wrote reaches the page as text nodes (textContent),
// never as HTML.
"use strict";

const S = {
  info: null, view: null, settings: null, revision: 0, controller: null, cController: null,
  scenarios: [], job: null, timer: null, pending: null,
};
window.__explore = { timings: [], errors: [] };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = String(text);
  return e;
}
function sv(tag, attrs = {}, text = null) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = String(text);
  return e;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function fmt(x, d = 2) { return x === null || x === undefined || !isFinite(x) ? "\u2013" : Number(x).toFixed(d); }
function fmtOr(o) { return o ? `${fmt(o.median)} [${fmt(o.q025)}, ${fmt(o.q975)}]` : "\u2013"; }
function fmtP(p) { return fmt(p, 3); }

// ------------------------------------------------------------------ settings <-> URL

function currentSettings() {
  const model = document.querySelector("input[name=model]:checked").value;
  const s = { model, tau: $("tau-text").value.trim(), mu: $("mu-text").value.trim(), exclude: [] };
  for (const box of document.querySelectorAll("#trials input[type=checkbox]")) {
    if (!box.checked) s.exclude.push(box.dataset.study);
  }
  if (model === "binomial-normal" && $("baseline-text").value.trim()) {
    s.baseline = $("baseline-text").value.trim();
  }
  if ($("subgroup").value) {  // one tau per subgroup: independent exact fits
    s.subgroup = $("subgroup").value;
    s.subgroup_tau = "separate";
  }
  return s;
}

function queryString(s) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) {
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else if (v !== undefined && v !== null && v !== "") p.append(k, v);
  }
  return p.toString();
}

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) {
    const err = new Error(body.error || `HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

function showError(message) {
  $("error").textContent = message || "";
  if (message) window.__explore.errors.push(message);
}

// ------------------------------------------------------------------ refresh

function changed(reason) {
  S.pending = { reason, t0: performance.now() };
  refresh();
}

async function refresh() {
  const started = S.pending || { reason: "refresh", t0: performance.now() };
  S.pending = null;
  if (S.controller) S.controller.abort();
  const ctl = new AbortController();
  S.controller = ctl;
  const s = currentSettings();
  S.settings = s;
  const mcmc = s.model === "binomial-normal";
  $("mcmc-box").hidden = !mcmc;
  document.body.dataset.state = "busy";
  try {
    const view = await api("/api/view?" + queryString(s), { signal: ctl.signal });
    const fetched = performance.now();
    S.view = view;
    draw(view);
    showError("");
    await updateC(ctl);
    await new Promise((r) => requestAnimationFrame(() => r()));
    const done = performance.now();
    const t = { reason: started.reason, fetch_ms: fetched - started.t0, total_ms: done - started.t0 };
    window.__explore.timings.push(t);
    $("timing").textContent =
      `${view.summary.engine} answer in ${fmt(t.fetch_ms, 0)} ms; page redrawn ${fmt(t.total_ms, 0)} ms after the change`;
    S.revision += 1;
    document.body.dataset.revision = String(S.revision);
    document.body.dataset.state = "ready";
    loadPsense(s, ctl);
  } catch (e) {
    if (e.name === "AbortError") return;
    S.view = null;  // what is drawn is stale: greyed out, not added to the table
    if (e.status === 409 && mcmc) {
      showError("binomial-normal is fitted by MCMC: press Run MCMC (about 10-30 s)");
      document.body.dataset.state = "needs-mcmc";
    } else {
      showError(e.message);
      document.body.dataset.state = "error";
    }
    S.revision += 1;
    document.body.dataset.revision = String(S.revision);
  }
}

async function loadPsense(s, ctl) {
  const table = clear($("psense"));
  table.appendChild(el("caption", {}, "computing\u2026"));
  try {
    const r = await api("/api/psense?" + queryString(s), { signal: ctl.signal });
    clear(table);
    table.appendChild(row(["variable", "prior", "likelihood", "diagnosis"], "th"));
    for (const p of r.psense) table.appendChild(row([p.variable, fmt(p.prior, 3), fmt(p.likelihood, 3), p.diagnosis]));
  } catch (e) {
    if (e.name !== "AbortError") { clear(table); table.appendChild(el("caption", {}, e.message)); }
  }
}

// ------------------------------------------------------------------ P(OR > c)

// the slider moves in steps of 0.01 on the log scale; c is rounded to 3 significant digits
// and that very number is both shown and asked for
function cValue() { return Number(Math.exp(Number($("c-slider").value) / 100).toPrecision(3)); }

async function updateC(ctl) {
  const c = cValue();
  $("c-value").textContent = String(c);
  $("c-echo").textContent = String(c);
  if (S.view) drawBenefit(S.view.benefit, c);
  if (!S.view || !S.settings) return;
  if (S.view.summary.engine !== "exact") {  // MCMC: the curve's nearest grid point
    const b = S.view.benefit;
    let best = 0;
    b.c.forEach((ci, i) => { if (Math.abs(Math.log(ci / c)) < Math.abs(Math.log(b.c[best] / c))) best = i; });
    $("p-or-gt-c").textContent = fmtP(b.p_or[best]) + ` (c = ${fmt(b.c[best])})`;
    $("p-or-new-gt-c").textContent = fmtP(b.p_or_new[best]);
    return;
  }
  if (S.cController && S.cController !== ctl) S.cController.abort();
  const own = ctl || new AbortController();
  S.cController = own;
  const cText = String(c);
  const base = queryString(S.settings);
  try {
    const [a, b] = await Promise.all([
      api(`/api/query?expr=${encodeURIComponent(`P(OR > ${cText})`)}&${base}`, { signal: own.signal }),
      api(`/api/query?expr=${encodeURIComponent(`P(OR_new > ${cText})`)}&${base}`, { signal: own.signal }),
    ]);
    $("p-or-gt-c").textContent = fmtP(a.probability);
    $("p-or-new-gt-c").textContent = fmtP(b.probability);
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  }
}

// ------------------------------------------------------------------ drawing

function row(cells, tag = "td") {
  const tr = el("tr");
  for (const c of cells) tr.appendChild(el(tag, {}, c));
  return tr;
}

function draw(view) {
  const s = view.summary;
  $("or-text").textContent = fmtOr(s.or);
  $("p-or-gt-1").textContent = fmtP(s.p_mu_gt_0);
  const mcse = (s.mcse || {}).p_mu_gt_0;
  $("p-or-gt-1-mcse").textContent = mcse === undefined ? "" : `\u00b1 ${fmt(mcse, 3)} (MCSE)`;
  $("or-new-text").textContent = fmtOr(s.or_new);
  $("p-or-new-gt-1").textContent = fmtP(s.p_theta_new_gt_0);
  $("tau-text-out").textContent = fmtOr(s.tau);
  $("priors-text").textContent = Object.entries(s.priors).map(([k, v]) => `${k} ~ ${v}`).join("; ");
  drawForest(view);
  drawDensity($("post-or"), view.curves.mu, { logOr: true, marker: 0 });
  drawDensity($("post-or-new"), view.curves.theta_new, { logOr: true, marker: 0 });
  if (view.curves.tau) drawDensity($("tau-plot"), view.curves.tau, { logOr: false });
  else clear($("tau-plot"));
  drawClassical(s.frequentist || {});
  drawSubgroups(s);
}

function scale(d0, d1, r0, r1) {
  const k = (r1 - r0) / ((d1 - d0) || 1);
  return (v) => r0 + (v - d0) * k;
}

const WIDE_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100];
const NARROW_TICKS = [0.25, 0.33, 0.5, 0.67, 1, 1.5, 2, 3, 4];

function orAxis(svg, x, lo, hi, y0, y1) {
  svg.appendChild(sv("line", { x1: x(lo), x2: x(hi), y1: y1, y2: y1, class: "axis" }));
  for (const t of (hi - lo < Math.log(10) ? NARROW_TICKS : WIDE_TICKS)) {
    const lt = Math.log(t);
    if (lt < lo || lt > hi) continue;
    svg.appendChild(sv("line", { x1: x(lt), x2: x(lt), y1: y1, y2: y1 + 4, class: "axis" }));
    svg.appendChild(sv("text", { x: x(lt), y: y1 + 15, "text-anchor": "middle" }, t));
  }
  if (lo < 0 && hi > 0) svg.appendChild(sv("line", { x1: x(0), x2: x(0), y1: y0, y2: y1, class: "null" }));
}

function drawForest(view) {
  const svg = clear($("forest"));
  const rows = view.forest;
  const s = view.summary;
  const rowH = 22, top = 10, left = 210, width = 760, right = 150;
  const n = rows.length + 2;
  const height = top + n * rowH + 44;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  let lo = Math.min(...rows.map((r) => Math.min(r.lower, r.theta.q025)), Math.log(s.or_new.q025));
  let hi = Math.max(...rows.map((r) => r.upper), Math.log(s.or_new.q975));
  lo = Math.max(lo, Math.log(0.01)); hi = Math.min(hi, Math.log(100));
  const pad = 0.05 * (hi - lo); lo -= pad; hi += pad;
  const x = scale(lo, hi, left, width - right);
  const clip = (v) => Math.min(Math.max(v, lo), hi);
  rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    const g = sv("g", { class: "study-row", "data-study": r.study });
    g.appendChild(sv("text", { x: 4, y: y + 4 }, r.group ? `${r.study} (${r.group})` : r.study));
    g.appendChild(sv("line", { x1: x(clip(r.lower)), x2: x(clip(r.upper)), y1: y - 4, y2: y - 4, class: "obs" }));
    g.appendChild(sv("rect", { x: x(clip(r.y)) - 3, y: y - 7, width: 6, height: 6, class: "obs-pt" }));
    const t = r.theta;
    g.appendChild(sv("line", { x1: x(clip(t.q025)), x2: x(clip(t.q975)), y1: y + 4, y2: y + 4, class: "shrunk" }));
    g.appendChild(sv("circle", { cx: x(clip(t.median)), cy: y + 4, r: 3.5, class: "shrunk-pt" }));
    g.appendChild(sv("text", { x: width - right + 8, y: y + 4 }, fmtOr(r.or)));
    svg.appendChild(g);
  });
  const yp = top + rows.length * rowH + rowH / 2;
  const o = s.or;
  const d = [[Math.log(o.q025), yp], [Math.log(o.median), yp - 7], [Math.log(o.q975), yp], [Math.log(o.median), yp + 7]]
    .map(([a, b]) => `${x(clip(a))},${b}`).join(" ");
  svg.appendChild(sv("text", { x: 4, y: yp + 4 }, "pooled OR"));
  svg.appendChild(sv("polygon", { points: d, class: "pooled", id: "forest-pooled" }));
  svg.appendChild(sv("text", { x: width - right + 8, y: yp + 4 }, fmtOr(o)));
  const yn = yp + rowH;
  const on = s.or_new;
  svg.appendChild(sv("text", { x: 4, y: yn + 4 }, "OR of a new trial"));
  svg.appendChild(sv("line", { x1: x(clip(Math.log(on.q025))), x2: x(clip(Math.log(on.q975))), y1: yn, y2: yn, class: "pred" }));
  svg.appendChild(sv("circle", { cx: x(clip(Math.log(on.median))), cy: yn, r: 3, class: "shrunk-pt" }));
  svg.appendChild(sv("text", { x: width - right + 8, y: yn + 4 }, fmtOr(on)));
  orAxis(svg, x, lo, hi, top, top + n * rowH);
  const yl = height - 4;
  svg.appendChild(sv("rect", { x: 4, y: yl - 8, width: 6, height: 6, class: "obs-pt" }));
  svg.appendChild(sv("text", { x: 14, y: yl }, "observed log-OR, 95% CI"));
  svg.appendChild(sv("circle", { cx: 170, cy: yl - 4, r: 3.5, class: "shrunk-pt" }));
  svg.appendChild(sv("text", { x: 178, y: yl }, "shrunken estimate, 95% CrI (OR at right)"));
}

function drawDensity(svg, curve, { logOr, marker = null }) {
  clear(svg);
  const width = 380, height = 200, left = 10, bottom = 25, topPad = 10;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const xs = curve.x;
  const series = [["posterior", "post"], ["prior", "prior"]].filter(([k]) => curve[k]);
  const ymax = Math.max(...series.flatMap(([k]) => curve[k].filter((v) => v !== null && isFinite(v))), 1e-12);
  const capped = Math.min(ymax, 3 * Math.max(...curve.posterior.filter((v) => v !== null)));
  const x = scale(xs[0], xs[xs.length - 1], left, width - left);
  const y = scale(0, capped * 1.05, height - bottom, topPad);
  for (const [k, cls] of series) {
    const pts = [];
    curve[k].forEach((v, i) => { if (v !== null && isFinite(v)) pts.push(`${x(xs[i]).toFixed(1)},${y(Math.min(v, capped * 1.05)).toFixed(1)}`); });
    svg.appendChild(sv("polyline", { points: pts.join(" "), class: cls, "data-series": k }));
  }
  if (logOr) orAxis(svg, x, xs[0], xs[xs.length - 1], topPad, height - bottom);
  else {
    svg.appendChild(sv("line", { x1: left, x2: width - left, y1: height - bottom, y2: height - bottom, class: "axis" }));
    const step = xs[xs.length - 1] > 2.5 ? 1 : xs[xs.length - 1] > 1 ? 0.5 : 0.2;
    for (let t = 0; t <= xs[xs.length - 1] + 1e-9; t += step) {
      svg.appendChild(sv("text", { x: x(t), y: height - bottom + 15, "text-anchor": "middle" }, fmt(t, 1)));
    }
  }
  svg.appendChild(sv("text", { x: width - 10, y: 14, "text-anchor": "end" }, series.map(([k]) => k).join(" / ")));
}

function drawBenefit(b, c) {
  const svg = clear($("benefit"));
  const width = 380, height = 200, left = 30, bottom = 25, topPad = 10;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const lc = b.c.map(Math.log);
  const x = scale(lc[0], lc[lc.length - 1], left, width - 10);
  const y = scale(0, 1, height - bottom, topPad);
  for (const [k, cls] of [["p_or", "post"], ["p_or_new", "new"]]) {
    const pts = b[k].map((v, i) => `${x(lc[i]).toFixed(1)},${y(v).toFixed(1)}`);
    svg.appendChild(sv("polyline", { points: pts.join(" "), class: cls, "data-series": k }));
  }
  for (const p of [0, 0.5, 1]) svg.appendChild(sv("text", { x: 2, y: y(p) + 4 }, p));
  orAxis(svg, x, lc[0], lc[lc.length - 1], topPad, height - bottom);
  const xc = x(Math.log(c));
  svg.appendChild(sv("line", { x1: xc, x2: xc, y1: topPad, y2: height - bottom, class: "marker", id: "c-marker" }));
  svg.appendChild(sv("text", { x: width - 10, y: 14, "text-anchor": "end" }, "P(OR > c) / P(OR_new > c)"));
}

function drawClassical(freq) {
  const table = clear($("classical"));
  table.appendChild(row(["method", "OR [95% CI]", "tau"], "th"));
  for (const [key, v] of Object.entries(freq)) {
    if (!v || typeof v !== "object" || v.or === undefined) continue;
    const name = (v.method || key) + (v.hartung_knapp ? "-HK" : "");
    table.appendChild(row([name, `${fmt(v.or)} [${fmt(v.lower)}, ${fmt(v.upper)}]`, v.tau === undefined ? "" : fmt(v.tau)]));
  }
  if (freq.error) table.appendChild(row([`note: ${freq.error}`, "", ""]));
}

function drawSubgroups(s) {
  const box = $("subgroups-box");
  const table = clear($("subgroups"));
  box.hidden = !s.subgroups;
  if (!s.subgroups) return;
  table.appendChild(row(["subgroup", "k", "OR", "P(OR > 1)", "tau"], "th"));
  for (const [level, g] of Object.entries(s.subgroups)) {
    table.appendChild(row([level, g.k, fmtOr(g.or), fmtP(g.p_mu_gt_0), fmtOr(g.tau)]));
  }
}

// ------------------------------------------------------------------ MCMC jobs

async function runMcmc() {
  const s = currentSettings();
  showError("");
  try {
    const job = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(s),
    });
    S.job = job.id;
    $("mcmc-cancel").disabled = false;
    $("mcmc-run").disabled = true;
    pollJob();
  } catch (e) { showError(e.message); }
}

async function pollJob() {
  if (!S.job) return;
  try {
    const job = await api(`/api/jobs/${encodeURIComponent(S.job)}`);
    $("mcmc-progress").value = job.progress;
    $("mcmc-status").textContent = `${job.state}: ${job.phase}` + (job.elapsed_s !== null ? `, ${fmt(job.elapsed_s, 1)} s` : "");
    if (job.state === "queued" || job.state === "running") { S.timer = setTimeout(pollJob, 400); return; }
    S.job = null;
    $("mcmc-cancel").disabled = true;
    $("mcmc-run").disabled = false;
    if (job.state === "done") changed("mcmc done");
    else if (job.state === "failed") showError(`MCMC failed: ${job.error}`);
  } catch (e) { showError(e.message); }
}

async function cancelMcmc() {
  if (!S.job) return;
  clearTimeout(S.timer);
  try { await api(`/api/jobs/${encodeURIComponent(S.job)}`, { method: "DELETE" }); } catch (e) { showError(e.message); }
  S.job = null;
  $("mcmc-status").textContent = "cancelled";
  $("mcmc-progress").value = 0;
  $("mcmc-cancel").disabled = true;
  $("mcmc-run").disabled = false;
}

// ------------------------------------------------------------------ sensitivity table

function addScenario() {
  if (!S.view || !S.settings) return;
  S.scenarios.push({ settings: { ...S.settings }, summary: S.view.summary });
  drawScenarios();
}

function drawScenarios() {
  const table = clear($("scenarios"));
  table.appendChild(row(["#", "model", "tau prior", "mu prior", "excluded", "OR", "P(OR > 1)", "OR new"], "th"));
  S.scenarios.forEach((sc, i) => {
    const s = sc.summary;
    table.appendChild(row([i + 1, s.model, s.priors.tau || "", s.priors.mu || "", sc.settings.exclude.join("; "), fmtOr(s.or), fmtP(s.p_mu_gt_0), fmtOr(s.or_new)]));
  });
  $("export-toml").disabled = $("export-csv").disabled = S.scenarios.length === 0;
}

async function exportScenarios(kind) {
  try {
    const r = await api("/api/sensitivity", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenarios: S.scenarios.map((sc) => sc.settings) }),
    });
    const text = kind === "toml" ? r.toml : r.csv;
    $("export-out").textContent = text;
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })), download: kind === "toml" ? "sensitivity.toml" : "sensitivity.csv" });
    document.body.appendChild(a); a.click(); a.remove();
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ controls

function tauFromFamily() {
  const f = $("tau-family").value, sc = Number($("tau-scale").value);
  $("tau-scale-out").textContent = fmt(sc);
  const text = {
    "half-normal": `half-normal(${sc})`, "half-cauchy": `half-cauchy(${sc})`, "half-t": `half-t(3, ${sc})`,
    exponential: `exponential(${fmt(1 / sc, 4)})`, uniform: `uniform(0, ${sc})`,
  }[f];
  $("tau-text").value = text;
}

function tauFromTurner() {
  $("tau-text").value = `turner(${$("turner-outcome").value}, ${$("turner-comparison").value})`;
}

function fillTurner() {
  const outcomes = [...new Set(S.info.turner.map(([o]) => o))];
  const sel = clear($("turner-outcome"));
  outcomes.forEach((o) => sel.appendChild(el("option", { value: o }, o)));
  fillComparisons();
}

function fillComparisons() {
  const o = $("turner-outcome").value;
  const sel = clear($("turner-comparison"));
  S.info.turner.filter(([oo]) => oo === o).forEach(([, c]) => sel.appendChild(el("option", { value: c }, c)));
}

function onPreset() {
  const v = $("tau-preset").value;
  $("turner-box").hidden = v !== "turner";
  $("family-box").hidden = v !== "custom";
  if (v === "turner") tauFromTurner();
  else if (v === "custom") tauFromFamily();
  else $("tau-text").value = v;
  changed("tau preset");
}

function muFromInputs() {
  $("mu-text").value = `normal(${Number($("mu-mean").value)}, ${Number($("mu-sd").value)})`;
  changed("mu prior");
}

async function init() {
  try {
    S.info = await api("/api/info");
  } catch (e) { showError(e.message); return; }
  const info = S.info;
  $("data-name").textContent = info.name;
  $("data-line").textContent = `${info.k} trials (${info.kind === "arm" ? "arm-level counts" : "contrasts"})`;
  const notes = clear($("notices"));
  info.notices.forEach((n) => notes.appendChild(el("li", {}, n)));
  const trials = clear($("trials"));
  info.studies.forEach((study, i) => {
    const id = `trial-${i}`;
    const label = el("label", { for: id });
    const box = el("input", { type: "checkbox", id });
    box.checked = !info.defaults.exclude.includes(study);
    box.dataset.study = study;
    box.addEventListener("change", () => changed("exclude"));
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + study));
    trials.appendChild(label);
  });
  for (const col of Object.keys(info.covariates)) $("subgroup").appendChild(el("option", { value: col }, col));
  fillTurner();
  const d = info.defaults;
  if (d.tau) $("tau-text").value = d.tau;
  if (d.mu) $("mu-text").value = d.mu;
  if (d.model) document.querySelector(`input[name=model][value="${d.model}"]`).checked = true;
  $("tau-preset").addEventListener("change", onPreset);
  $("turner-outcome").addEventListener("change", () => { fillComparisons(); tauFromTurner(); changed("turner"); });
  $("turner-comparison").addEventListener("change", () => { tauFromTurner(); changed("turner"); });
  $("tau-family").addEventListener("change", () => { tauFromFamily(); changed("tau family"); });
  $("tau-scale").addEventListener("input", () => { tauFromFamily(); changed("tau scale"); });
  $("tau-text").addEventListener("change", () => changed("tau text"));
  $("mu-mean").addEventListener("change", muFromInputs);
  $("mu-sd").addEventListener("change", muFromInputs);
  $("mu-text").addEventListener("change", () => changed("mu text"));
  $("baseline-text").addEventListener("change", () => changed("baseline"));
  $("subgroup").addEventListener("change", () => changed("subgroup"));
  for (const r of document.querySelectorAll("input[name=model]")) r.addEventListener("change", () => changed("model"));
  $("c-slider").addEventListener("input", () => updateC(null));
  $("mcmc-run").addEventListener("click", runMcmc);
  $("mcmc-cancel").addEventListener("click", cancelMcmc);
  $("add-scenario").addEventListener("click", addScenario);
  $("export-toml").addEventListener("click", () => exportScenarios("toml"));
  $("export-csv").addEventListener("click", () => exportScenarios("csv"));
  changed("load");
}

document.addEventListener("DOMContentLoaded", init);
