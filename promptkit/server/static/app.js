// promptkit workbench: prompt editors with tag suggestions, live CLIP chunk marks and lint,
// all computed by the JSON API of `promptkit serve` (this file only shows and edits text).

const $ = (sel) => document.querySelector(sel);
const FIELD_IDS = { positive: "prompt", negative: "negative", settings: "settings" };
const FIELD_LABELS = { positive: "prompt", negative: "negative", settings: "settings" };

// ---------------------------------------------------------------------------------------
// API

async function call(path, { params, body } = {}) {
  const url = params ? `${path}?${new URLSearchParams(params)}` : path;
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(url, init);
  const data = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function say(message, isError = false) {
  const el = $("#status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function fail(err) {
  say(`Error: ${err.message}`, true);
}

function settingsNow() {
  return { profile: $("#profile").value || null, backend: $("#backend").value || "a1111" };
}

// ---------------------------------------------------------------------------------------
// Editors: a textarea over a backdrop that repeats its text with the marks

const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// how offsets move when the text changes from a to b (one edited stretch: common prefix/suffix)
function offsetMapper(a, b) {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  const oldEnd = a.length - s;
  const delta = b.length - a.length;
  return (off) => (off <= p ? off : off >= oldEnd ? off + delta : null);
}

class Editor {
  constructor(field) {
    this.field = field;
    this.ta = document.getElementById(FIELD_IDS[field]);
    this.layer = this.ta.parentElement.querySelector(".layer");
    this.note = document.getElementById(`${FIELD_IDS[field]}-note`);
    this.lintMarks = []; // {start, end, cls, diag}
    this.chunkMarks = []; // {start, end, cls}
    this.points = []; // {offset, chunk}
    this.last = this.ta.value;
    this.ta.addEventListener("input", () => this.changed());
    this.autosize();
    this.render();
  }

  get text() {
    return this.ta.value;
  }

  changed() {
    const text = this.ta.value;
    if (text !== this.last) {
      // keep the marks in place until the new analysis arrives
      const map = offsetMapper(this.last, text);
      const shift = (marks) => marks.flatMap((m) => {
        const s = map(m.start), e = map(m.end);
        return s === null || e === null ? [] : [{ ...m, start: s, end: e }];
      });
      this.lintMarks = shift(this.lintMarks);
      this.chunkMarks = shift(this.chunkMarks);
      this.points = this.points.flatMap((p) => {
        const o = map(p.offset);
        return o === null ? [] : [{ ...p, offset: o }];
      });
      this.last = text;
      scheduleAnalysis();
    }
    this.autosize();
    this.render();
  }

  autosize() {
    this.ta.style.height = "auto";
    this.ta.style.height = `${this.ta.scrollHeight + 2}px`;
  }

  render() {
    const text = this.ta.value;
    const n = text.length;
    const clamp = (o) => Math.max(0, Math.min(n, o));
    const marks = [...this.chunkMarks, ...this.lintMarks].map((m) => {
      let s = clamp(m.start), e = clamp(m.end);
      if (s === e) { // an insertion point: mark the character next to it
        if (e < n) e += 1; else if (s > 0) s -= 1;
      }
      return { ...m, start: s, end: e };
    });
    const caret = this.ta.selectionStart;
    const cuts = new Set([0, n, caret]);
    for (const m of marks) { cuts.add(m.start); cuts.add(m.end); }
    for (const p of this.points) cuts.add(clamp(p.offset));
    const sorted = [...cuts].sort((a, b) => a - b);
    let html = "";
    for (let i = 0; i < sorted.length; i++) {
      const pos = sorted[i];
      for (const p of this.points) {
        if (clamp(p.offset) === pos) {
          html += `<span class="cmark" data-chunk="${p.chunk}" data-offset="${p.offset}" title="chunk ${p.chunk} starts here"></span>`;
        }
      }
      if (pos === caret) html += '<span class="probe"></span>';
      const end = sorted[i + 1];
      if (end === undefined || end <= pos) continue;
      const classes = [...new Set(marks.filter((m) => m.start <= pos && m.end >= end).map((m) => m.cls))];
      const piece = escapeHtml(text.slice(pos, end));
      html += classes.length ? `<mark class="${classes.join(" ")}">${piece}</mark>` : piece;
    }
    // a final newline needs something after it to take up its line, as in the textarea
    this.layer.innerHTML = html + (text.endsWith("\n") || !text ? " " : "");
  }

  caretBox() {
    this.render();
    const probe = this.layer.querySelector(".probe");
    return probe ? probe.getBoundingClientRect() : this.ta.getBoundingClientRect();
  }

  setLint(diags) {
    this.lintMarks = diags.map((d) => ({ start: d.span[0], end: d.span[1], cls: `lint-${d.severity}`, diag: d }));
    this.render();
    this.updateNote();
  }

  setChunks(report) {
    const marks = [];
    const points = [];
    const text = this.text;
    report.chunks.forEach((c, i) => {
      if (i > 0 && c.span) points.push({ offset: c.span[0], chunk: c.index });
      if (c.moved_span) marks.push({ start: c.moved_span[0], end: c.moved_span[1], cls: "moved" });
      if (c.break_span) marks.push({ start: c.break_span[0], end: c.break_span[1], cls: "brk" });
      const next = report.chunks[i + 1];
      if (c.cut_tag && next && next.span) {
        const edge = next.span[0];
        let s = text.lastIndexOf(",", edge - 1) + 1;
        let e = text.indexOf(",", edge);
        if (e === -1) e = text.length;
        while (s < e && /\s/.test(text[s])) s++;
        while (e > s && /\s/.test(text[e - 1])) e--;
        marks.push({ start: s, end: e, cls: "cut" });
      }
    });
    this.chunkMarks = marks;
    this.points = points;
    this.render();
  }

  // the problem under the cursor, said under the editor
  updateNote() {
    const at = this.ta.selectionStart;
    const hit = this.lintMarks.find((m) => m.start <= at && at <= Math.max(m.end, m.start + 1));
    if (hit) {
      this.note.innerHTML = `<span class="code">${escapeHtml(hit.diag.code)}</span> ${escapeHtml(hit.diag.message)}`;
    } else {
      this.note.textContent = "";
    }
  }

  // replace the text keeping the browser's undo history (only the changed stretch is edited)
  replaceText(next) {
    const cur = this.ta.value;
    if (cur === next) return;
    let p = 0;
    while (p < cur.length && p < next.length && cur[p] === next[p]) p++;
    let s = 0;
    while (s < cur.length - p && s < next.length - p && cur[cur.length - 1 - s] === next[next.length - 1 - s]) s++;
    this.replaceRange(p, cur.length - s, next.slice(p, next.length - s));
  }

  replaceRange(start, end, insert) {
    const ta = this.ta;
    ta.focus();
    ta.setSelectionRange(start, end);
    let done = false;
    try {
      done = insert ? document.execCommand("insertText", false, insert) : document.execCommand("delete");
    } catch (e) {
      done = false;
    }
    if (!done || ta.value.slice(start, start + insert.length) !== insert) {
      ta.setRangeText(insert, start, end, "end");
      this.changed();
    }
  }

  select(start, end) {
    this.ta.focus();
    this.ta.setSelectionRange(start, end);
    this.updateNote();
  }
}

const editors = {};

// ---------------------------------------------------------------------------------------
// Suggestions (tagcomplete-like)

const fmtCount = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : `${n}`);
const KNOWN_CATS = new Set(["general", "artist", "copyright", "character", "meta"]);

const sugg = { open: false, items: [], index: 0, editor: null, start: 0, cursor: 0, seq: 0, inserting: false };
const list = () => $("#suggestions");

async function suggest(editor) {
  const ta = editor.ta;
  const cursor = ta.selectionStart;
  if (ta.selectionEnd !== cursor) return closeSuggestions();
  const from = Math.max(0, cursor - 256);
  const q = ta.value.slice(from, cursor);
  if (!q.trim()) return closeSuggestions();
  const seq = ++sugg.seq;
  let data;
  try {
    data = await call("/api/complete", { params: { q, limit: 10, ...cleanParams() } });
  } catch (err) {
    fail(err);
    return;
  }
  // a later keystroke owns the list now
  if (seq !== sugg.seq || ta.selectionStart !== cursor || ta.value.slice(from, cursor) !== q) return;
  if (!data.query.trim() || !data.items.length) return closeSuggestions();
  Object.assign(sugg, { items: data.items, index: 0, editor, start: from + data.replace_from, cursor });
  showSuggestions();
}

function cleanParams() {
  const { profile, backend } = settingsNow();
  return profile ? { profile, backend } : { backend };
}

function showSuggestions() {
  const el = list();
  el.innerHTML = "";
  sugg.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.id = `sugg-${i}`;
    li.setAttribute("role", "option");
    li.className = `cat-${KNOWN_CATS.has(item.category) ? item.category : "other"}`;
    li.dataset.tag = item.tag;
    li.title = `${item.category}, ${item.post_count.toLocaleString()} posts${item.kind === "fuzzy" ? " (close match)" : ""}`;
    const text = document.createElement("span");
    text.className = "text";
    if (item.alias) {
      const alias = document.createElement("span");
      alias.className = "alias";
      alias.textContent = `${item.alias.replaceAll("_", " ")} → `;
      text.append(alias);
    }
    text.append(item.insert_text);
    const posts = document.createElement("span");
    posts.className = "posts";
    posts.textContent = item.post_count ? fmtCount(item.post_count) : item.source.startsWith("profile:") ? "model tag" : "";
    li.append(text, posts);
    li.addEventListener("mousedown", (e) => e.preventDefault()); // keep the editor focused
    li.addEventListener("click", () => acceptSuggestion(i));
    el.append(li);
  });
  sugg.open = true;
  el.hidden = false;
  sugg.editor.ta.setAttribute("aria-expanded", "true");
  highlight(0);
  // just under the caret, inside the window
  const box = sugg.editor.caretBox();
  const width = el.offsetWidth;
  const left = Math.max(4, Math.min(box.left, document.documentElement.clientWidth - width - 4));
  el.style.left = `${left + window.scrollX}px`;
  el.style.top = `${box.bottom + window.scrollY + 4}px`;
}

function highlight(i) {
  const items = list().children;
  if (!items.length) return;
  sugg.index = (i + items.length) % items.length;
  [...items].forEach((li, k) => li.setAttribute("aria-selected", k === sugg.index ? "true" : "false"));
  items[sugg.index].scrollIntoView({ block: "nearest" });
  sugg.editor.ta.setAttribute("aria-activedescendant", items[sugg.index].id);
}

function closeSuggestions() {
  if (sugg.editor) {
    sugg.editor.ta.setAttribute("aria-expanded", "false");
    sugg.editor.ta.removeAttribute("aria-activedescendant");
  }
  sugg.open = false;
  sugg.seq++;
  list().hidden = true;
}

function acceptSuggestion(i) {
  const item = sugg.items[i];
  const ed = sugg.editor;
  if (!item || !ed) return;
  const rest = ed.text.slice(sugg.cursor);
  const sep = rest.match(/^\s*,\s?/);
  const insert = sep ? item.insert_text : `${item.insert_text}, `;
  const start = sugg.start;
  closeSuggestions();
  sugg.inserting = true;
  ed.replaceRange(start, sugg.cursor, insert);
  sugg.inserting = false;
  const caret = start + insert.length + (sep ? sep[0].length : 0);
  ed.ta.setSelectionRange(caret, caret);
  ed.render();
  say(`Inserted ${item.insert_text}`);
}

let suggestTimer = 0;
function bindSuggestions(ed) {
  ed.ta.addEventListener("input", (e) => {
    if (sugg.inserting) return;
    if (e.inputType && !e.inputType.startsWith("insert") && !e.inputType.startsWith("delete")) return;
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(() => suggest(ed), 25);
  });
  ed.ta.addEventListener("keydown", (e) => {
    if (e.key === " " && e.ctrlKey) {
      e.preventDefault();
      suggest(ed);
      return;
    }
    if (!sugg.open || sugg.editor !== ed || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      highlight(sugg.index + (e.key === "ArrowDown" ? 1 : -1));
    } else if ((e.key === "Tab" && !e.shiftKey) || e.key === "Enter") {
      e.preventDefault();
      acceptSuggestion(sugg.index);
    } else if (e.key === "Escape") {
      e.preventDefault();
      closeSuggestions();
    } else if (["ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"].includes(e.key)) {
      closeSuggestions();
    }
  });
  ed.ta.addEventListener("blur", () => closeSuggestions());
  ed.ta.addEventListener("mousedown", () => closeSuggestions());
}

// ---------------------------------------------------------------------------------------
// Analysis: lint for all three fields, chunks for the two prompts

let analysisTimer = 0;
let lintSeq = 0;
const chunkSeq = { positive: 0, negative: 0 };
let focusProblems = false;

function scheduleAnalysis() {
  clearTimeout(analysisTimer);
  analysisTimer = setTimeout(analyze, 150);
}

function lintBody() {
  const { positive, negative, settings } = editors;
  return {
    prompt: positive.text,
    negative: negative.text || null,
    settings: settings.text.trim() ? settings.text : null,
    ...cleanParams(),
  };
}

async function analyze() {
  const body = lintBody();
  const seq = ++lintSeq;
  const jobs = [call("/api/lint", { body }).then((data) => {
    if (seq !== lintSeq) return;
    const sent = { positive: body.prompt, negative: body.negative || "", settings: body.settings || "" };
    for (const [field, ed] of Object.entries(editors)) {
      if (ed.text === sent[field]) ed.setLint(data.diagnostics.filter((d) => d.field === field));
    }
    renderProblems(data.diagnostics, sent);
  })];
  for (const field of ["positive", "negative"]) {
    const ed = editors[field];
    const text = ed.text;
    const cseq = ++chunkSeq[field];
    jobs.push(call("/api/chunks", { body: { prompt: text } }).then((report) => {
      if (cseq !== chunkSeq[field] || ed.text !== text) return;
      ed.setChunks(report);
      renderChunks(field, report);
    }));
  }
  try {
    await Promise.all(jobs);
  } catch (err) {
    fail(err);
  }
}

function renderChunks(field, report) {
  const counter = document.getElementById(`${FIELD_IDS[field]}-counter`);
  counter.textContent = report.counter;
  counter.classList.toggle("multi", report.chunks.length > 1);
  const ol = document.getElementById(`${FIELD_IDS[field]}-chunks`);
  ol.innerHTML = "";
  if (report.chunks.length < 2 && !report.breaks.length) return;
  const ed = editors[field];
  for (const c of report.chunks) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    let why = { full: "full", break: "ended by BREAK", end: "", backtrack: `${c.moved_tokens} tokens moved on` }[c.closed_by];
    if (c.cut_tag) why += ", a tag is cut here";
    b.innerHTML = `chunk ${c.index} <span class="n">${c.tokens}/${report.chunk_length}</span>` +
      (why ? ` <span class="why">${escapeHtml(why)}</span>` : "");
    const moved = c.moved_span ? ed.text.slice(c.moved_span[0], c.moved_span[1]) : "";
    b.title = moved ? `comma back-tracking moved “${moved}” to chunk ${c.index + 1}` : "select this chunk's text";
    b.disabled = !c.span;
    b.addEventListener("click", () => c.span && ed.select(c.span[0], c.span[1]));
    li.append(b);
    ol.append(li);
  }
}

function renderProblems(diags, sent) {
  const ul = $("#problems");
  ul.innerHTML = "";
  $("#problem-count").textContent = diags.length ? `(${diags.length})` : "";
  if (!diags.length) {
    const li = document.createElement("li");
    li.className = "problem none";
    li.textContent = "No problems found.";
    ul.append(li);
  }
  diags.forEach((d, i) => {
    const li = document.createElement("li");
    li.className = `problem sev-${d.severity}`;
    li.dataset.code = d.code;
    li.dataset.field = d.field;
    li.innerHTML = `<div class="head"><span class="code">${escapeHtml(d.code)}</span>` +
      `<span class="name">${escapeHtml(d.name)}</span>` +
      `<span class="where">${FIELD_LABELS[d.field]} ${d.line}:${d.column} · ${escapeHtml(d.severity)}</span></div>` +
      `<p class="msg">${escapeHtml(d.message)}</p>`;
    const actions = document.createElement("div");
    actions.className = "actions";
    const show = document.createElement("button");
    show.type = "button";
    show.textContent = "Show";
    show.addEventListener("click", () => editors[d.field].select(d.span[0], d.span[1]));
    actions.append(show);
    if (d.fix && (d.field === "positive" || d.field === "negative")) {
      const fx = document.createElement("button");
      fx.type = "button";
      fx.className = d.fix.safe ? "fix" : "fix unsafe";
      fx.textContent = d.fix.safe ? `Fix: ${d.fix.description || "apply"}` : `Unsafe fix: ${d.fix.description || "apply"}`;
      fx.title = d.fix.safe ? "a safe fix: the meaning stays the same" : "may change what the prompt does";
      fx.addEventListener("click", () => fixOne(d, !d.fix.safe));
      actions.append(fx);
    } else if (d.suggestion && d.field !== "settings") {
      const use = document.createElement("button");
      use.type = "button";
      use.className = "use";
      use.textContent = `Use “${d.suggestion}”`;
      use.addEventListener("click", () => {
        focusProblems = true;
        editors[d.field].replaceRange(d.span[0], d.span[1], d.suggestion);
      });
      actions.append(use);
    }
    li.append(actions);
    ul.append(li);
  });
  if (focusProblems) {
    focusProblems = false;
    (ul.querySelector("button") || $("#problems")).focus();
  }
}

async function fixOne(d, unsafe) {
  try {
    const res = await call("/api/fix", { body: { ...lintBody(), field: d.field, span: d.span, unsafe } });
    applyFixed(res);
  } catch (err) {
    fail(err);
  }
}

async function fixAll() {
  try {
    applyFixed(await call("/api/fix", { body: lintBody() }));
  } catch (err) {
    fail(err);
  }
}

function applyFixed(res) {
  focusProblems = true;
  editors.positive.replaceText(res.prompt);
  if (res.negative !== null) editors.negative.replaceText(res.negative);
  say(res.applied.length ? `Fixed: ${res.applied.map((d) => d.code).join(", ")}` : "Nothing to fix.");
  scheduleAnalysis();
}

// ---------------------------------------------------------------------------------------
// Normalize with a preview

let pendingNormalize = null;

function diffHtml(change) {
  let html = "";
  let pos = 0;
  const before = change.before;
  for (const c of change.changes) {
    html += escapeHtml(before.slice(pos, c.before[0]));
    if (c.old) html += `<del>${escapeHtml(c.old)}</del>`;
    if (c.new) html += `<ins>${escapeHtml(c.new)}</ins>`;
    pos = c.before[1];
  }
  return html + escapeHtml(before.slice(pos));
}

async function openNormalize() {
  let res;
  try {
    const { prompt, negative } = lintBody();
    res = await call("/api/normalize", { body: { prompt, negative, ...cleanParams() } });
  } catch (err) {
    fail(err);
    return;
  }
  pendingNormalize = res;
  $("#normalize-profile").textContent = res.profile;
  const body = $("#normalize-body");
  body.innerHTML = "";
  let any = false;
  for (const [key, label] of [["prompt", "Prompt"], ["negative", "Negative prompt"]]) {
    const part = res[key];
    if (!part) continue;
    const h = document.createElement("h3");
    h.textContent = part.changed ? `${label}: ${part.changes.length} change${part.changes.length === 1 ? "" : "s"}` : `${label}: already normalized`;
    const pre = document.createElement("pre");
    pre.className = "diff";
    pre.dataset.field = key;
    pre.innerHTML = part.changed ? diffHtml(part) : escapeHtml(part.before);
    body.append(h, pre);
    any = any || part.changed;
  }
  $("#normalize-apply").disabled = !any;
  $("#normalize-dialog").showModal();
  (any ? $("#normalize-apply") : $("#normalize-cancel")).focus();
}

function applyNormalize() {
  const res = pendingNormalize;
  $("#normalize-dialog").close();
  if (!res) return;
  if (res.prompt && res.prompt.changed) editors.positive.replaceText(res.prompt.after);
  if (res.negative && res.negative.changed) editors.negative.replaceText(res.negative.after);
  say("Normalized.");
  pendingNormalize = null;
}

// ---------------------------------------------------------------------------------------
// Infotext

const looksLikeInfotext = (t) => /\nNegative prompt:/.test(t) || /(^|\n)Steps: \d+,.*Sampler:/.test(t);

async function splitInfotext(text) {
  let res;
  try {
    res = await call("/api/infotext", { body: { text, ...cleanParams() } });
  } catch (err) {
    fail(err);
    return;
  }
  editors.positive.replaceText(res.prompt);
  editors.negative.replaceText(res.negative || "");
  editors.settings.replaceText(res.settings || "");
  const n = Object.keys(res.values).length;
  say(`Infotext split: prompt, ${res.negative === null ? "no negative" : "negative"}, ${n} setting${n === 1 ? "" : "s"}.`);
  scheduleAnalysis();
}

// ---------------------------------------------------------------------------------------
// Start

async function start() {
  for (const field of Object.keys(FIELD_IDS)) editors[field] = new Editor(field);
  bindSuggestions(editors.positive);
  bindSuggestions(editors.negative);
  document.addEventListener("selectionchange", () => {
    const ed = Object.values(editors).find((e) => e.ta === document.activeElement);
    if (ed) ed.updateNote();
  });
  window.addEventListener("resize", () => Object.values(editors).forEach((e) => { e.autosize(); e.render(); }));

  editors.positive.ta.addEventListener("paste", (e) => {
    const text = e.clipboardData && e.clipboardData.getData("text/plain");
    if (text && looksLikeInfotext(text)) {
      e.preventDefault();
      splitInfotext(text);
    }
  });
  $("#infotext-btn").addEventListener("click", () => splitInfotext($("#infotext").value));
  $("#normalize-btn").addEventListener("click", openNormalize);
  $("#normalize-apply").addEventListener("click", applyNormalize);
  $("#normalize-cancel").addEventListener("click", () => $("#normalize-dialog").close());
  $("#fixall-btn").addEventListener("click", fixAll);

  try {
    const info = await call("/api/profiles");
    const sel = $("#profile");
    for (const p of info.profiles) sel.add(new Option(`${p.name} (${p.family})`, p.name, false, p.name === info.default));
    const back = $("#backend");
    for (const b of info.backends) back.add(new Option(b, b, false, b === "a1111"));
    const describe = () => {
      const p = info.profiles.find((x) => x.name === sel.value);
      $("#profile-desc").textContent = p ? p.description : "";
    };
    describe();
    sel.addEventListener("change", () => { describe(); scheduleAnalysis(); });
    back.addEventListener("change", scheduleAnalysis);
  } catch (err) {
    fail(err);
  }
  document.body.dataset.ready = "true";
  await analyze();
}

start();
