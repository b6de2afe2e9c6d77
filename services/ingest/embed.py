"""A source's form as HTML to paste into its site (pure): the fields a lead form usually has,
labelled in the visitors' language, the ones the source requires marked required, a consent
box, the honeypot hidden from people and screen readers, the page's own address sent with
the post (browsers tell another site only the origin, so the UTM tags of the page's URL would
be lost) with the UTM tags and the referrer of the visit's landing page (the visitor may have
looked at other pages first), and the form sent once however often its button is clicked.
Nothing of the site's is assumed: plain elements, classes to style them by."""

import html
from dataclasses import dataclass

from services.ingest.models import Source
from shared.languages import FALLBACK, Language, say

# (field, input type, autocomplete): what a visitor is asked, in this order.
ASKED = (
    ("first_name", "text", "given-name"),
    ("last_name", "text", "family-name"),
    ("email", "email", "email"),
    ("phone", "tel", "tel"),
    ("company", "text", "organization"),
)
_ASKED = {name for name, _, _ in ASKED} | {"message", "consent"}
LABELLED = frozenset(
    {"first_name", "last_name", "email", "phone", "company", "message"}
    | {"city", "country", "job_title", "industry", "company_size", "budget", "timeframe", "need"}
)  # those texts.yaml has a `form_field_` label for
# The honeypot, kept off-screen rather than display:none, which some bots skip.
HONEYPOT = (
    '<div aria-hidden="true" style="position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden">'
    '<input name="_hp" tabindex="-1" autocomplete="off"></div>'
)
# The script after the form. It keeps the visit's landing in sessionStorage (the tab's, for the
# visit): its address, for its UTM tags, and the page the visitor came from. A visitor who came
# by an ad's link and looked at another page or two before sending the form lost the ad's tags:
# only the page the form was sent from was sent. The first page it runs on in the tab is the
# landing, and so is a later one with UTM tags of its own reached from another site (a new
# visit, by another ad); a page reached from the site's own keeps the landing. Pasted alone into
# a page without the form, it keeps the landing and does nothing else. With the form it sends
# the page's address (`page_url`), the landing's UTM tags (`utm_*`, which win over the page's)
# and its referrer (`referrer`); where sessionStorage is not to be had, this page's own.
#
# And it sends the form once. Clicked again while the post is on its way (a slow network), the
# form went again, and the lead got another `form_submitted`, scored again: the button is
# disabled and a second submit ignored until the next page comes, or for 10 s (a post that
# stalls may then be sent again; ingest takes the same post again within minutes as the first,
# api/forms.py). Coming back to the page from the next (the back button, which may show the page
# as it was left) enables it again.
SENDS_ITS_ADDRESS = """<script>(function (form) {
  var KEPT = "leadflow-landing";
  var TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
  function tags(url) {
    var found = {};
    try {
      new URL(url).searchParams.forEach(function (value, name) {
        name = name.toLowerCase();
        if (TAGS.indexOf(name) >= 0 && value.trim() && !found[name]) found[name] = value.trim().slice(0, 200);
      });
    } catch (e) {}
    return found;
  }
  function fromElsewhere() {
    try { return new URL(document.referrer).origin !== location.origin; } catch (e) { return true; }
  }
  var here = {url: location.href, referrer: document.referrer}, landing = here;
  try {
    landing = JSON.parse(sessionStorage.getItem(KEPT) || "null");
    if (!landing || typeof landing !== "object" || (fromElsewhere() && Object.keys(tags(here.url)).length)) {
      landing = here;
      sessionStorage.setItem(KEPT, JSON.stringify(here));
    }
  } catch (e) { landing = here; }
  if (!form || !form.classList || !form.classList.contains("leadflow-form")) return;
  var button = form.querySelector("[type=submit]"), sending = 0;
  function ready() { clearTimeout(sending); sending = 0; button.disabled = false; }
  function send(name, value) {
    var input = form.elements[name];
    if (!value || (input && input.type !== "hidden")) return;
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }
  form.addEventListener("submit", function (event) {
    if (sending) { event.preventDefault(); return; }
    sending = setTimeout(ready, 10000);
    button.disabled = true;
    send("page_url", location.href.slice(0, 2000));
    var landed = tags(landing.url);
    for (var name in landed) send(name, landed[name]);
    send("referrer", String(landing.referrer || "").slice(0, 2000));
  });
  window.addEventListener("pageshow", ready);
})(document.currentScript.previousElementSibling);</script>"""


def form_snippet(source: Source, action: str, language: Language) -> str:
    """The form posting to `action` (this source's form URL), in `language`."""
    required, labels = set(source.required_fields), Labels(source.field_labels or {}, language)
    fields = [_input(name, kind, auto, name in required, labels) for name, kind, auto in ASKED]
    others = [name for name in source.required_fields if name not in _ASKED]  # a source's own
    fields += [_input(name, "text", "off", True, labels) for name in others]
    fields.append(_message("message" in required, labels))
    wording = source.consent_text or say("form_consent_label", language)
    to = html.escape(action)
    opening = f'<form class="leadflow-form" method="post" action="{to}" accept-charset="utf-8">'
    return "\n".join(
        [
            opening,
            f'  <input type="hidden" name="language" value="{language}">',
            '  <input type="hidden" name="page_url">',
            *(f"  {field}" for field in fields),
            f"  {_consent('consent' in required, wording)}",
            f"  {HONEYPOT}",
            f'  <button type="submit">{html.escape(say("form_send", language))}</button>',
            "</form>",
            SENDS_ITS_ADDRESS,
        ]
    )


def readable(name: str) -> str:
    """A field's name as a visitor may read it when nothing better is known: `custom.company_size`
    is "Company size"."""
    words = name.removeprefix("custom.").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


@dataclass(frozen=True)
class Labels:
    """What a field is called on the form: the source's own label in the form's language, else
    the built-in one (texts.yaml, in every language), else the source's own in English, else
    the field's name made readable. Never the code name a visitor cannot read."""

    own: dict[str, dict[str, str]]
    language: Language

    def of(self, name: str) -> str:
        given = self.own.get(name) or {}
        if label := given.get(self.language):
            return label
        if name in LABELLED:
            return say(f"form_field_{name}", self.language)
        return given.get(FALLBACK) or readable(name)


def _input(name: str, kind: str, autocomplete: str, required: bool, labels: Labels) -> str:
    must = " required" if required else ""
    return (
        f'<label>{html.escape(labels.of(name))} <input type="{kind}" name="{html.escape(name)}"'
        f' autocomplete="{autocomplete}"{must}></label>'
    )


def _message(required: bool, labels: Labels) -> str:
    must = " required" if required else ""
    label = html.escape(labels.of("message"))
    return f'<label>{label} <textarea name="message" rows="3"{must}></textarea></label>'


def _consent(required: bool, wording: str) -> str:
    """The consent box, saying what the person agrees to (the source's `consent_text`, kept
    with each consent given: `consent_proofs`)."""
    must = " required" if required else ""
    return (
        f'<label class="leadflow-consent"><input type="checkbox" name="consent" value="yes"{must}>'
        f" {html.escape(wording)}</label>"
    )
