// The dashboard's drawing: plain SVG bars, table rows and definition lists, each redrawn only
// when it changes. dashboard.js reads the API and calls these; the figures' formats and the words
// are dashboard-language.js's.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

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

// a text's width as the chart draws it (.label and .value: 12 px, the figures bold)
const ruler = document.createElement("canvas").getContext("2d");
function textWidth(text, weight) {
  ruler.font = `${weight} 12px ${getComputedStyle(document.body).fontFamily}`;
  return ruler.measureText(text).width;
}

// Each name above its bar: in Russian, Kazakh or Azerbaijani a channel's name ("Бір батырмамен
// тапсырыс") may take a third of a phone's chart, and beside the bars it was cut by them. Each figure
// after its bar: the bars share what the widest figure leaves. Rows of 36 px at least: the chart
// grows for many channels rather than crowd their names.
function bars(svg, items, valueOf, format, kind) {
  charts.set(svg, [items, valueOf, format, kind]);
  const drawn = [];
  const width = svg.clientWidth || 400;
  const top = Math.max(1, ...items.map(valueOf));
  const row = Math.max(36, 200 / Math.max(items.length, 1));
  const height = `${Math.max(220, items.length * row + 20)}px`;
  if (svg.style.height !== height) svg.style.height = height;
  const figures = items.map((item) => format(valueOf(item), item));
  const room = Math.max(1, width - 6 - Math.max(0, ...figures.map((figure) => textWidth(figure, 600))));
  items.forEach((item, index) => {
    const value = valueOf(item);
    const y = index * row + 4;
    const bar = row - 20;
    const length = Math.max(1, (value / top) * room);
    const name = item.name ?? item.label; // the code (a stage, a channel), whatever the language
    drawn.push(element("text", { x: 0, y: y + 12, class: "label" }, item.label));
    drawn.push(element("rect", { x: 0, y: y + 16, width: length, height: bar, class: `bar ${kind || ""}`, "data-name": name, "data-value": value }));
    drawn.push(element("text", { x: length + 6, y: y + 20 + bar / 2, class: "value", "data-name": name }, figures[index]));
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
  for (const [term, value, problem, english] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    if (english) dd.lang = "en"; // a line in the API's words, read as English
    // a problem is said by a sign, not by its red alone (a colour-blind reader, a screen reader)
    dd.textContent = problem ? `⚠ ${value}` : value;
    if (problem) dd.className = "problem";
    drawn.push(dt, dd);
  }
  redraw(list, drawn);
}
