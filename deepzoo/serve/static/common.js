// What every page of deepzoo serve shares: the API call, the run's header, bars of probabilities.
// Text from the models and the user is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// el("p", {className: "x"}, "text", child, ...): a new element
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

// GET (no body) or POST JSON; the answer's JSON, or an Error carrying the server's {"error": ...}
async function api(path, body) {
  const init = body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

const runName = () => decodeURIComponent(location.pathname.split("/").pop());
const predict = (inputs, options = {}) =>
  api(`/api/runs/${encodeURIComponent(runName())}/predict`, {inputs, options});

// The run's title, figure and reference at the top, its training curves at the bottom; returns its info.
async function header() {
  const run = await api(`/api/runs/${encodeURIComponent(runName())}`);
  document.title = `${run.name} · deepzoo`;
  const ref = run.reference || {};
  $("head").replaceChildren(
    el("a", {href: "/", className: "back"}, "← all runs"),
    el("h1", {}, run.name),
    el("p", {className: "meta"}, `${run.recipe} · ${run.family} · ${run.dataset}` +
       (run.preset ? ` · ${run.preset} preset` : "")),
    el("p", {className: "meta"}, `${run.metric}: ${run.figure}` +
       (ref.figure ? ` (reference ${ref.figure}, ${ref.source})` : ref.source ? ` (${ref.source})` : "")),
    el("p", {className: "description"}, run.description));
  if (run.plot) $("foot").replaceChildren(el("h2", {}, "Training"), el("img", {src: run.plot, alt: "training curves"}));
  return run;
}

// Horizontal bars, most likely first (the first `top`)
function bars(target, probabilities, top = 10) {
  const rows = Object.entries(probabilities).sort((a, b) => b[1] - a[1]).slice(0, top);
  target.replaceChildren(...rows.map(([name, p]) => el("div", {className: "bar"},
    el("span", {className: "name"}, name),
    el("span", {className: "track"}, el("span", {className: "fill", style: `width:${(100 * p).toFixed(1)}%`})),
    el("span", {className: "value"}, p.toFixed(3)))));
}

// Run `work` with the button disabled; an error goes into #error, in words
async function busy(button, work) {
  $("error").textContent = "";
  button.disabled = true;
  try {
    return await work();
  } catch (e) {
    $("error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// The inputs of `deepzoo predict`'s options that this run takes, read as numbers ({} when left empty)
function options(run) {
  const out = {};
  for (const name of run.options) {
    const field = $(name);
    if (field && field.value !== "") out[name] = Number(field.value);
  }
  return out;
}

// Show only the option fields this run takes (each wrapped in a label with data-option="name")
function showOptions(run) {
  for (const label of document.querySelectorAll("[data-option]"))
    label.hidden = !run.options.includes(label.dataset.option);
}
