// sse-screen page: builds a request from the form, posts it to /api/rank, draws the table and the Pareto plot.
// No libraries and no assets from the internet; everything here is served by the app.
"use strict";

const PAGE_ROWS = 100;
const COLUMNS = [
  // [key, header, kind, title]
  ["rank", "rank", "int", "Position by the chosen ranking (ranked rows only)"],
  ["formula", "formula", "text", "Candidate formula"],
  ["move", "move", "text", "How a generated variant was made from its parent (Ta on Zr, x=0.25, Li compensates)"],
  ["known_log10_sigma_s_per_cm", "known", "known", "What is already known about this composition: measured conductivity (OBELiX), Materials Project E_hull and band gap; point to a cell for the sources"],
  ["status", "status", "status", "ranked, rejected (a check failed) or invalid (cannot be read)"],
  ["reason", "reason", "text", "Why the row was rejected or is invalid"],
  ["score", "score", "num3", "Weighted geometric mean of the objectives' desirabilities (0-1)"],
  ["pareto_rank", "Pareto", "int", "Pareto front (1 = not dominated)"],
  ["e_hull_ev_per_atom", "E_hull eV/atom", "pm:e_hull_std_ev_per_atom", "Predicted energy above hull ± 1σ"],
  ["p_stable", "p(stable)", "num2", "Probability of being (near) stable"],
  ["log10_sigma_s_per_cm", "log10 σ S/cm", "pm:log10_sigma_std", "Predicted room-temperature ionic conductivity ± 1σ"],
  ["in_domain", "in domain", "bool", "Inside the conductivity model's training domain"],
  ["band_gap_ev", "band gap eV", "pm:band_gap_std_ev", "Predicted band gap ± 1σ"],
  ["p_insulator", "p(insulator)", "num2", "Probability of being an electronic insulator"],
  ["cost_usd_per_kg", "cost USD/kg", "num1", "Raw-element cost"],
  ["decomposition", "decomposition", "text", "Known phases at the hull"],
  ["warnings", "warnings", "text", "Soft flags that do not reject"],
];

const $ = (id) => document.getElementById(id);
const state = { rows: [], columns: [], sortKey: null, sortDir: 1, page: 0, lastRequest: null, abort: null };

function token() { return $("token").value.trim(); }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h.Authorization = "Bearer " + token();
  return h;
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function options() {
  const o = { mobile_ion: $("mobile_ion").value, mode: $("mode").value, order_by: $("order_by").value };
  for (const id of ["max_e_hull_ev_per_atom", "min_band_gap_ev", "max_cost_usd_per_kg"]) {
    const v = numberOrNull(id);
    if (v !== null) o[id] = v;
  }
  const weights = {};
  document.querySelectorAll("[data-weight]").forEach((el) => {
    if (el.value.trim() !== "") weights[el.dataset.weight] = Number(el.value);
  });
  if (Object.keys(weights).length) o.weights = weights;
  return o;
}

// One request description, reused for the CSV download of the same ranking.
function buildRequest() {
  const file = $("file").files[0];
  if (file) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("options", JSON.stringify(options()));
    return { body: form, headers: {}, label: "Uploading and ranking " + file.name, rows: 0, bytes: file.size, cifs: /\.zip$/i.test(file.name) };
  }
  const parents = $("parents").value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parents.length) {
    const body = Object.assign({ parents }, options());
    const max = numberOrNull("max_candidates");
    if (max !== null) body.max_candidates = max;
    return {
      url: "/api/rank-variants",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" },
      label: "Generating and ranking the variants of " + parents.join(", "),
    };
  }
  const formulas = $("formulas").value.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
  if (!formulas.length) return null;
  const n = formulas.length.toLocaleString();
  return {
    body: JSON.stringify(Object.assign({ formulas }, options())),
    headers: { "Content-Type": "application/json" },
    label: `Ranking ${n} candidate${formulas.length === 1 ? "" : "s"}`,
    rows: formulas.length,
    bytes: 0,
  };
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function errorMessage(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const data = await response.json();
    if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } catch (_) { /* not JSON */ }
  if (response.status === 401 || response.status === 403) $("token-box").open = true;
  return `Could not rank (${response.status}): ${detail}`;
}

async function post(request, format) {
  state.abort = new AbortController();
  if (request.job) {  // a long list ran as a job: its result, as JSON or CSV
    return fetch(`/api/jobs/${request.job}/result?format=${format}`, { headers: headers(), signal: state.abort.signal });
  }
  const url = (request.url || "/api/rank") + (format === "csv" ? "?format=csv" : "");
  return fetch(url, {
    method: "POST", body: request.body, headers: headers(request.headers), signal: state.abort.signal,
  });
}

// Lists above these sizes run as a job (POST /api/jobs): the request returns at once, the page polls its progress.
let jobRows = 10000;
let jobBytes = 1024 * 1024;

function isLong(request) {
  return !request.cifs && (request.rows > jobRows || request.bytes > jobBytes);  // CIFs: /api/rank only
}

async function runJob(request) {
  state.abort = new AbortController();
  const signal = state.abort.signal;
  const submitted = await fetch("/api/jobs", { method: "POST", body: request.body, headers: headers(request.headers), signal });
  if (!submitted.ok) return submitted;
  const { id } = await submitted.json();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const answer = await fetch(`/api/jobs/${id}`, { headers: headers(), signal });
    if (!answer.ok) return answer;
    const job = await answer.json();
    const waiting = job.status === "queued" ? `, ${job.queued_before} job(s) before it` : "";
    state.progressNote = ` (job ${job.status}${waiting}: ${job.done_rows.toLocaleString()} of ${job.n_rows.toLocaleString()} rows)`;
    if (job.status === "done") {
      request.job = id;
      return post(request, "json");
    }
    if (job.status !== "queued" && job.status !== "running") {
      return new Response(JSON.stringify({ detail: `the job ${job.status}: ${job.error}` }), { status: 500, statusText: "Job failed" });
    }
  }
}

function startProgress(label) {
  const started = performance.now();
  $("progress").hidden = false;
  $("rank-button").disabled = true;
  $("download-button").disabled = true;
  const tick = () => {
    const s = ((performance.now() - started) / 1000).toFixed(1);
    $("progress-text").textContent = `${label}… ${s} s${state.progressNote || ""}`;
  };
  tick();
  const timer = setInterval(tick, 100);
  return () => {
    clearInterval(timer);
    state.progressNote = "";
    $("progress").hidden = true;
    $("rank-button").disabled = false;
    state.abort = null;
  };
}

async function rank(event) {
  event.preventDefault();
  showError("");
  const request = buildRequest();
  if (!request) { showError("Paste at least one formula, choose a file or name a parent."); return; }
  const stop = startProgress(request.label);
  try {
    const response = isLong(request) ? await runJob(request) : await post(request, "json");
    if (!response.ok) { showError(await errorMessage(response)); return; }
    const data = await response.json();
    state.lastRequest = request;
    state.rows = data.rows;
    state.columns = COLUMNS.filter(([key]) => data.columns.includes(key));
    renderNotices(data.notices || []);
    state.sortKey = null;
    state.page = 0;
    renderSummary(data.summary);
    renderHead();
    renderBody();
    drawPareto(data.rows);
    $("results").hidden = false;
    $("download-button").disabled = false;
  } catch (err) {
    showError(err.name === "AbortError" ? "Cancelled." : "Could not reach the server: " + err.message);
  } finally {
    stop();
    if (state.rows.length) $("download-button").disabled = false;
  }
}

async function download() {
  if (!state.lastRequest) return;
  showError("");
  const stop = startProgress("Preparing the CSV");
  try {
    const response = await post(state.lastRequest, "csv");
    if (!response.ok) { showError(await errorMessage(response)); return; }
    const blob = await response.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "ranked.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    showError(err.name === "AbortError" ? "Cancelled." : "Could not download: " + err.message);
  } finally {
    stop();
    $("download-button").disabled = false;
  }
}

function renderNotices(notices) {
  const box = $("notices");
  box.textContent = notices.map((n) => "Note: " + n).join("\n");
  box.hidden = notices.length === 0;
}

function isNumber(v) { return typeof v === "number" && Number.isFinite(v); }

// The "known" cell: a short marker, and the values with their sources as a tooltip.
function knownText(row) {
  const parts = [];
  if (isNumber(row.known_log10_sigma_s_per_cm)) parts.push(`measured ${row.known_log10_sigma_s_per_cm.toFixed(2)}`);
  else if (row.known_sigma_source) parts.push("measured (censored)");
  if (isNumber(row.known_e_hull_ev_per_atom) || isNumber(row.known_band_gap_ev)) parts.push("MP");
  return parts.join(" · ");
}

function knownTitle(row) {
  const lines = [];
  if (row.known_sigma_source) {
    const v = isNumber(row.known_log10_sigma_s_per_cm) ? `${row.known_log10_sigma_s_per_cm.toFixed(2)} log10 S/cm` : "censored";
    lines.push(`Measured RT conductivity: ${v} — ${row.known_sigma_source}`);
  }
  if (isNumber(row.known_e_hull_ev_per_atom)) lines.push(`Known E_hull: ${row.known_e_hull_ev_per_atom.toFixed(3)} eV/atom`);
  if (isNumber(row.known_band_gap_ev)) lines.push(`Known band gap: ${row.known_band_gap_ev.toFixed(2)} eV`);
  if (row.known_source) lines.push(row.known_source);
  return lines.join("\n");
}

function renderSummary(summary) {
  const parts = [["ranked", "ranked"], ["rejected", "rejected"], ["invalid", "invalid"]]
    .map(([k, label]) => `<span class="chip ${k}">${(summary[k] || 0).toLocaleString()} ${label}</span>`);
  $("summary").innerHTML = parts.join("") + `<span class="muted">of ${summary.rows.toLocaleString()} rows</span>`;
}

function renderHead() {
  const tr = document.querySelector("#ranked thead tr");
  tr.textContent = "";
  for (const [key, label, , title] of state.columns) {
    const th = document.createElement("th");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.title = title + " — click to sort";
    button.addEventListener("click", () => sortBy(key));
    th.appendChild(button);
    th.dataset.key = key;
    th.setAttribute("aria-sort", state.sortKey === key ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
    tr.appendChild(th);
  }
}

function visibleRows() {
  return $("show-all").checked ? state.rows : state.rows.filter((r) => r.status === "ranked");
}

function compare(a, b) {
  const x = a[state.sortKey], y = b[state.sortKey];
  const missingX = x === null || x === undefined || x === "", missingY = y === null || y === undefined || y === "";
  if (missingX || missingY) return missingX === missingY ? 0 : missingX ? 1 : -1; // missing values last
  if (typeof x === "number" && typeof y === "number") return (x - y) * state.sortDir;
  return String(x).localeCompare(String(y), undefined, { numeric: true }) * state.sortDir;
}

function sortBy(key) {
  state.sortDir = state.sortKey === key ? -state.sortDir : 1;
  state.sortKey = key;
  state.rows = state.rows.slice().sort(compare);
  state.page = 0;
  renderHead();
  renderBody();
}

function format(row, key, kind) {
  const v = row[key];
  if (kind === "known") return knownText(row);
  if (v === null || v === undefined) return "";
  if (kind === "int") return String(v);
  if (kind === "bool") return v ? "yes" : "no";
  if (kind.startsWith("num")) return typeof v === "number" ? v.toFixed(Number(kind.slice(3))) : String(v);
  if (kind.startsWith("pm:")) {
    if (typeof v !== "number") return String(v);
    const sd = row[kind.slice(3)];
    return v.toFixed(key.startsWith("log10") ? 2 : 3) + (typeof sd === "number" ? ` ± ${sd.toFixed(key.startsWith("log10") ? 2 : 3)}` : "");
  }
  return String(v);
}

function renderBody() {
  const rows = visibleRows();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  state.page = Math.min(state.page, pages - 1);
  const slice = rows.slice(state.page * PAGE_ROWS, (state.page + 1) * PAGE_ROWS);
  const body = document.querySelector("#ranked tbody");
  const fragment = document.createDocumentFragment();
  for (const row of slice) {
    const tr = document.createElement("tr");
    tr.className = row.status;
    for (const [key, , kind] of state.columns) {
      const td = document.createElement("td");
      td.dataset.key = key;
      td.textContent = format(row, key, kind);
      if (kind === "status") td.innerHTML = `<span class="chip ${row.status}">${row.status}</span>`;
      if (key === "formula" && (row.stability_drivers || row.conductivity_drivers)) {
        td.title = `stability drivers: ${row.stability_drivers || "-"}\nconductivity drivers: ${row.conductivity_drivers || "-"}`;
      }
      if (key === "warnings" || key === "decomposition") td.title = td.textContent;
      if (kind === "known" && td.textContent) { td.title = knownTitle(row); td.className = "known"; }
      if (key === "log10_sigma_s_per_cm" && !td.textContent && row.conductivity_model) td.title = row.conductivity_model;
      if (kind.startsWith("num") || kind.startsWith("pm:") || kind === "int") td.className = "num";
      tr.appendChild(td);
    }
    fragment.appendChild(tr);
  }
  body.textContent = "";
  body.appendChild(fragment);
  const first = rows.length ? state.page * PAGE_ROWS + 1 : 0;
  $("page-info").textContent = `rows ${first}–${state.page * PAGE_ROWS + slice.length} of ${rows.length.toLocaleString()}`;
  $("prev-page").disabled = state.page === 0;
  $("next-page").disabled = state.page >= pages - 1;
}

// ---------------------------------------------------------------------------------------------- Pareto plot (SVG)
const SVG_NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function ticks(lo, hi, n) {
  const step0 = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

function drawPareto(rows) {
  const svg = $("pareto-svg");
  svg.textContent = "";
  const pts = rows.filter((r) => r.status === "ranked" && Number.isFinite(r.e_hull_ev_per_atom) && Number.isFinite(r.log10_sigma_s_per_cm));
  $("pareto").hidden = pts.length === 0;
  if (!pts.length) return;
  const W = 720, H = 320, L = 64, R = 16, T = 14, B = 44;
  const xs = pts.map((r) => r.e_hull_ev_per_atom), ys = pts.map((r) => r.log10_sigma_s_per_cm);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const padX = (x1 - x0 || 0.1) * 0.08, padY = (y1 - y0 || 1) * 0.1;
  x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
  const sx = (v) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const sy = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const clampX = (v) => Math.max(L, Math.min(W - R, v)), clampY = (v) => Math.max(T, Math.min(H - B, v));
  svg.appendChild(el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot-bg" }));
  for (const v of ticks(x0, x1, 6)) {
    svg.appendChild(el("line", { x1: sx(v), x2: sx(v), y1: T, y2: H - B, class: "grid" }));
    svg.appendChild(el("text", { x: sx(v), y: H - B + 16, class: "tick", "text-anchor": "middle" }, String(v)));
  }
  for (const v of ticks(y0, y1, 5)) {
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid" }));
    svg.appendChild(el("text", { x: L - 6, y: sy(v) + 4, class: "tick", "text-anchor": "end" }, String(v)));
  }
  svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, "predicted E_hull (eV/atom) →  lower is better"));
  svg.appendChild(el("text", { x: 14, y: (T + H - B) / 2, class: "axis", "text-anchor": "middle", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, "log10 σ (S/cm) ↑"));
  const front = pts.filter((r) => r.pareto_rank === 1);
  const shown = pts.slice(0, 3000).sort((a, b) => (b.pareto_rank || 99) - (a.pareto_rank || 99)); // front on top
  for (const r of shown) {
    const c = el("circle", { cx: sx(r.e_hull_ev_per_atom), cy: sy(r.log10_sigma_s_per_cm), r: 4.5, class: r.pareto_rank === 1 ? "front1" : "" });
    const sdE = Number.isFinite(r.e_hull_std_ev_per_atom) ? ` ± ${r.e_hull_std_ev_per_atom.toFixed(3)}` : "";
    const sdS = Number.isFinite(r.log10_sigma_std) ? ` ± ${r.log10_sigma_std.toFixed(2)}` : "";
    c.appendChild(el("title", {}, `${r.formula}: rank ${r.rank}, Pareto front ${r.pareto_rank}\nE_hull ${r.e_hull_ev_per_atom.toFixed(3)}${sdE} eV/atom\nlog10 σ ${r.log10_sigma_s_per_cm.toFixed(2)}${sdS} S/cm`));
    svg.appendChild(c);
  }
  for (const r of front.slice(0, 12)) {
    svg.appendChild(el("text", { x: sx(r.e_hull_ev_per_atom) + 7, y: sy(r.log10_sigma_s_per_cm) - 6, class: "label" }, r.formula));
  }
}

// ------------------------------------------------------------------------------------------------------- start-up
async function loadDefaults() {
  try {
    const response = await fetch("/api/options", { headers: headers() });
    if (!response.ok) return;
    const data = await response.json();
    document.querySelectorAll("[data-weight]").forEach((input) => {
      const w = data.defaults.weights[input.dataset.weight];
      if (w !== undefined) input.placeholder = String(w);
    });
    const models = await (await fetch("/api/models", { headers: headers() })).json();
    $("models-line").textContent = "Models: " + models.models.map((m) => `${m.task}: ${m.description}`).join(" · ") + " (details: /api/models)";
  } catch (_) { /* the page still works without defaults */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("sse-screen-token") || "";
  $("token").addEventListener("change", () => { sessionStorage.setItem("sse-screen-token", token()); loadDefaults(); });
  $("rank-form").addEventListener("submit", rank);
  $("download-button").addEventListener("click", download);
  $("cancel-button").addEventListener("click", () => state.abort && state.abort.abort());
  $("clear-file").addEventListener("click", () => { $("file").value = ""; });
  $("show-all").checked = true;
  $("show-all").addEventListener("change", () => { state.page = 0; renderBody(); });
  $("prev-page").addEventListener("click", () => { state.page -= 1; renderBody(); });
  $("next-page").addEventListener("click", () => { state.page += 1; renderBody(); });
  loadDefaults();
});
