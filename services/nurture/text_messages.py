"""What an SMS or messenger text to the person says around its template: the company's name
first (carriers require a text to name its sender), and last a way to stop, the lead's signed
unsubscribe link (the page emails link to): a person who gave only a phone can unsubscribe too.
Pure, no I/O. A call task is the rep's, not a text: it takes neither."""

from shared.languages import Language, say


def to_the_person(body: str, sender_name: str | None, language: Language, unsubscribe_link: str) -> str:
    """`Acme: <body>` (just `<body>` with no name set), then `Unsubscribe: <link>` in the lead's
    language on a line of its own."""
    named = f"{sender_name}: {body}" if sender_name else body
    return f"{named}\n{say('unsubscribe_footer', language)}: {unsubscribe_link}"
