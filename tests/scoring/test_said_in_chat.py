"""What a person wrote in a chat is what they said, for the rep calling them (found by a review:
a hot chatbot lead's `lead.hot` had `said: null` while a form's message is quoted)."""

from shared.events import Said
from tests.scoring.factories import activity, ago, lead
from tests.scoring.test_said_again import BUYING, said_in_classification

ASKED = "Salam, qiymət nə qədərdir? Mənə zəng edin: +994 50 555 44 33"


def test_a_chatbot_leads_last_chat_line_is_what_it_said() -> None:
    chatted = lead(
        1, "chatbot", activity("chat_message", 1, text="Salam"), activity("chat_message", 0, text=ASKED)
    )
    assert said_in_classification(chatted) == Said(message=ASKED, at=ago(0))


def test_the_newest_words_are_said_whether_a_chat_or_a_submission() -> None:
    chat_after = lead(3, "web_form", activity("chat_message", 1, text=ASKED), **BUYING)
    assert said_in_classification(chat_after) == Said(message=ASKED, at=ago(1))
    repeat_after = lead(
        3, "web_form", activity("chat_message", 2, text=ASKED), activity("form_submitted", 1, **BUYING)
    )
    assert said_in_classification(repeat_after) == Said(**BUYING, at=ago(1))


def test_a_long_chat_line_is_said_bounded_as_a_submissions_message() -> None:
    long = "Сколько стоит доставка в Шымкент? " * 100
    said = said_in_classification(lead(1, "chatbot", activity("chat_message", 0, text=long)))
    repeat = said_in_classification(lead(1, "web_form", activity("form_submitted", 0, message=long)))
    assert said is not None and repeat is not None
    assert said.message == repeat.message == long[:500]


def test_words_that_are_not_the_persons_own_are_not_said() -> None:
    """A rep's note is no chat line: nothing said stays nothing."""
    noted = lead(1, "chatbot", activity("call_logged", 0, note="left a voicemail"))
    assert said_in_classification(noted) is None
