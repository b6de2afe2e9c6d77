// The visitor's language: the first of the browser's preferred languages the dashboard speaks,
// or the one chosen in the header (remembered in this browser); the page's own words from
// dashboard-texts.js, and every figure, percent, amount and time formatted for it with Intl.
"use strict";

const LANGUAGE_KEY = "leadflow.language";

function preferredLanguage() {
  const kept = localStorage.getItem(LANGUAGE_KEY);
  if (kept && Object.hasOwn(TEXTS, kept)) return kept;
  for (const tag of navigator.languages || [navigator.language]) {
    const code = tag.toLowerCase().split("-")[0]; // kk-KZ, ru-RU, az-Latn-AZ
    if (Object.hasOwn(TEXTS, code)) return code;
  }
  return "en";
}

let language = preferredLanguage();

// a text of the table with its {names} filled in
function text(key, values = {}) {
  return TEXTS[language][key].replace(/\{(\w+)\}/g, (_, name) => values[name]);
}

// a channel of a source's own (the event carries any string) is shown as it is
const stageName = (code) => TEXTS[language].stages[code] ?? code;
const channelName = (code) => TEXTS[language].channels[code] ?? code;

// A text whose {reason} is the API's own (it names fields: "to: must be after `from`"), kept in
// English and marked so, for a screen reader to read it as English. Written only when it changes.
function writeWithReason(node, key, reason) {
  const [before, after] = TEXTS[language][key].split("{reason}");
  if (node.textContent === before + reason + after) return;
  const quoted = document.createElement("span");
  quoted.lang = "en";
  quoted.textContent = reason;
  node.replaceChildren(before, quoted, after);
}

// Chromium's Intl knows kk and az by name but not how they write numbers (1,234.50 in both): there
// a language that writes them as CLDR says kk and az do stands in (kk: 1 234,50 and 8,3%, as
// Ukrainian; az: 1.234,50 and 8,3%, as Dutch). A browser that knows them (Firefox) uses its own.
const NUMBERS_LIKE = { kk: "uk", az: "nl" };
const numbersOf = (code) => (Object.hasOwn(NUMBERS_LIKE, code) && (1.5).toLocaleString(code) === "1.5" ? NUMBERS_LIKE[code] : code);
let numbers = numbersOf(language);

// counts and amounts grouped in thousands, amounts to the cent, as the visitor's language writes them
const missing = (value) => value === null || value === undefined;
const count = (value) => (missing(value) ? "–" : value.toLocaleString(numbers));
const amount = (value) => (missing(value) ? "–" : value.toLocaleString(numbers, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const percent = (ratio) => (missing(ratio) ? "–" : ratio.toLocaleString(numbers, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }));
const seconds = (value) => (missing(value) ? "–" : text("seconds", { value: value.toLocaleString(numbers, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) }));
const clock = (date) => date.toLocaleTimeString(language);
const day = (date) => date.toLocaleDateString(language);

// The page's own words: elements name their text (data-text), accessible name (data-label) or
// placeholder (data-placeholder); <html lang> follows, for a screen reader's voice.
function translatePage() {
  document.documentElement.lang = language;
  document.title = text("title");
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = text(node.dataset.text);
  for (const node of document.querySelectorAll("[data-label]")) node.setAttribute("aria-label", text(node.dataset.label));
  for (const node of document.querySelectorAll("[data-placeholder]")) node.placeholder = text(node.dataset.placeholder);
  for (const option of document.querySelectorAll("#channels option")) option.label = channelName(option.value);
  document.getElementById("language").value = language;
}

function chooseLanguage(code) {
  language = code;
  numbers = numbersOf(code);
  localStorage.setItem(LANGUAGE_KEY, code);
  translatePage();
}

const chooser = document.getElementById("language");
chooser.replaceChildren(...Object.entries(LANGUAGE_NAMES).map(([code, name]) => {
  const option = document.createElement("option");
  option.value = code;
  option.lang = code; // each named in itself, and read so
  option.textContent = name;
  return option;
}));
translatePage();
