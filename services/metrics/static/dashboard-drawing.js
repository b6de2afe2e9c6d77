// The dashboard's drawing: plain SVG bars, table rows and definition lists, each redrawn only
// when it changes, and the figures' formats. dashboard.js reads the API and calls these.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

// counts and amounts grouped in thousands, amounts to the cent: "100,006 leads", "18,601.80"
const count = (value) => value.toLocaleString("en");
const amount = (value) => (value === null || value === undefined ? "–" : value.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const percent = (ratio) => (ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)}%`);
const seconds = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} s`);

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A node's children or text replaced only when they differ: a screen reader reading a card keeps
// its place through the refreshes every 5 s that change nothing there.
function redraw(parent, children) {
  if (parent.innerHTML !== children.map((child) => child.outerHTML).join("")) parent.replaceChildren(...children);
}

function write(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Each chart's last figures: its bars are measured for its width, so a turned phone or a resized
// window draws them again for the new one (with updates paused too).
const charts = new Map();
window.addEventListener("resize", () => {
  for (const [svg, drawing] of charts) bars(svg, ...drawing);
});

function bars(svg, items, valueOf, format, kind) {
  charts.set(svg, [items, valueOf, format, kind]);
  const drawn = [];
  const width = svg.clientWidth || 400;
  const top = Math.max(1, ...items.map(valueOf));
  const row = 200 / Math.max(items.length, 1);
  items.forEach((item, index) => {
    const value = valueOf(item);
    const y = index * row + 4;
    const length = Math.max(1, (value / top) * (width - 220));
    drawn.push(element("text", { x: 0, y: y + row / 2, class: "label" }, item.label));
    drawn.push(element("rect", { x: 110, y, width: length, height: row - 8, class: `bar ${kind || ""}`, "data-name": item.label, "data-value": value }));
    drawn.push(element("text", { x: 116 + length, y: y + row / 2, class: "value", "data-name": item.label }, format(value, item)));
  });
  redraw(svg, drawn);
}

// a chart's figures as a table's rows: what a screen reader reads, and the CAC card shows
function rows(body, cells) {
  redraw(body, cells.map((texts) => {
    const tr = document.createElement("tr");
    for (const text of texts) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

function definitions(list, entries) {
  const drawn = [];
  for (const [term, value, problem] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    // a problem is said by a sign, not by its red alone (a colour-blind reader, a screen reader)
    dd.textContent = problem ? `⚠ ${value}` : value;
    if (problem) dd.className = "problem";
    drawn.push(dt, dd);
  }
  redraw(list, drawn);
}
