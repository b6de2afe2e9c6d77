"""A ФИО field is Фамилия Имя Отчество, surname first: "Иванова Анна Сергеевна" was split on its
first space as first name "Иванова", last name "Анна Сергеевна", and every template greets by
the first name: customers got "Здравствуйте, Иванова!" (found by a marketer's review). A plain
name field keeps its first-name-first split."""

import pytest

from services.ingest.field_names import FIO, WHOLE_NAME, field_named
from services.ingest.forms import lead_from_form
from services.ingest.person_names import Name, capitalized, split_fio, split_name, surname_likeness


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # surname first, as ФИО is written
        ("Иванова Анна Сергеевна", Name("Анна Сергеевна", "Иванова")),
        ("Мамедов Рашид", Name("Рашид", "Мамедов")),
        ("Ким Алексей", Name("Алексей", "Ким")),  # no ending: the order says it
        ("Məmmədli Rəşid Əli oğlu", Name("Rəşid Əli oğlu", "Məmmədli")),
        ("Сейтқали Аружан", Name("Аружан", "Сейтқали")),
        ("Аружан", Name("Аружан", None)),
        # the surname where people put it
        ("Анна Сергеевна Иванова", Name("Анна Сергеевна", "Иванова")),
        ("Rəşid Əli oğlu Məmmədli", Name("Rəşid Əli oğlu", "Məmmədli")),
        ("Марина Иванова", Name("Марина", "Иванова")),  # -ова is a surname's, -ина a name's too
        ("Anna Sergeyevna Ivanova", Name("Anna Sergeyevna", "Ivanova")),
        ("Рашид Əliyev", Name("Рашид", "Əliyev")),
        # any letter case, ё, a double surname, a comma
        ("ИВАНОВА АННА", Name("АННА", "ИВАНОВА")),
        ("MƏMMƏDLİ RƏŞİD", Name("RƏŞİD", "MƏMMƏDLİ")),
        ("Королёв Сергей Павлович", Name("Сергей Павлович", "Королёв")),
        ("Сергей Королёв", Name("Сергей", "Королёв")),
        ("Петрова-Водкина Анна", Name("Анна", "Петрова-Водкина")),
        ("Иванова, Анна Сергеевна", Name("Анна Сергеевна", "Иванова")),
        ("  Иванова   Анна  ", Name("Анна", "Иванова")),
        # patronymics are no surnames
        ("Мамедов Рашид Али оглы", Name("Рашид Али оглы", "Мамедов")),
        ("Məmmədova Leyla Əli qızı", Name("Leyla Əli qızı", "Məmmədova")),
        ("Сейтқали Аружан Нұрланқызы", Name("Аружан Нұрланқызы", "Сейтқали")),
        ("Нұрланұлы Ерлан", Name("Ерлан", "Нұрланұлы")),  # a surname of the new kind
        ("Nurlanuly Yerlan", Name("Yerlan", "Nurlanuly")),
        ("Анна Сергеевна", Name("Анна Сергеевна", None)),  # no surname given
        ("Анна Сергеевна Ким", Name("Анна Сергеевна", "Ким")),
        ("Карпович Анна", Name("Анна", "Карпович")),  # a -вич first is a surname
        # given names ending as a surname does: the order says it
        ("Əli Rəşid", Name("Rəşid", "Əli")),
        ("Ильина Марина", Name("Марина", "Ильина")),
    ],
)
def test_a_fio_field_is_split_surname_and_first_name_with_the_patronymic(
    written: str, expected: Name
) -> None:
    assert split_fio(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # a ФИО typed into a plain name field: "Здравствуйте, Иванова!" was the greeting
        ("Иванова Анна Сергеевна", Name("Анна Сергеевна", "Иванова")),
        ("Петров Иван", Name("Иван", "Петров")),  # only the first word a surname, strongly
        ("Ильина Марина", Name("Марина", "Ильина")),  # a given name after the first word
        ("Иван Петров", Name("Иван", "Петров")),
        ("Марина Ильина", Name("Марина", "Ильина")),
        ("Ким Анна", Name("Ким", "Анна")),  # nothing tells: the first word first, as written
        ("Aruzhan Seitkali", Name("Aruzhan", "Seitkali")),
        ("Leyla", Name("Leyla", None)),
        ("Leyla  Əliyeva ", Name("Leyla", "Əliyeva")),
        ("Leyla\u00a0Əliyeva", Name("Leyla", "Əliyeva")),  # a no-break space, as Excel may write one
    ],
)
def test_a_plain_name_field_is_split_first_name_first(written: str, expected: Name) -> None:
    assert split_name(written) == expected


@pytest.mark.parametrize(
    ("word", "likeness"),
    [
        ("Иванова", 2),
        ("ИВАНОВ", 2),
        ("Mammadov", 2),
        ("Əliyeva", 2),
        ("Достоевский", 2),
        ("Нұрланқызы", 2),
        ("Mirzəzadə", 2),
        ("Ильин", 1),
        ("Марина", 0),  # a common given name, though -ина
        ("Ильина", 1),
        ("Məmmədli", 1),
        ("Ева", 0),  # two letters before an ending, at least
        ("Əli", 0),
        ("Ким", 0),
        ("Сергеевна", 0),
    ],
)
def test_how_much_a_word_looks_like_a_surname(word: str, likeness: int) -> None:
    assert surname_likeness(word) == likeness


@pytest.mark.parametrize(
    "header", ["ФИО", "фио", "fio", "FIO", "Ф.И.О.", "Ф. И. О.", "Фамилия, имя, отчество"]
)
def test_fio_headers_name_a_whole_name_written_surname_first(header: str) -> None:
    assert field_named(header) == FIO


@pytest.mark.parametrize("header", ["name", "Name", "Имя", "full name", "Full_Name", "Ad soyad", "Аты-жөні"])
def test_plain_name_headers_name_a_whole_name_written_first_name_first(header: str) -> None:
    assert field_named(header) == WHOLE_NAME


@pytest.mark.parametrize(
    ("header", "first_name", "last_name"),
    [
        ("ФИО", "Анна Сергеевна", "Иванова"),
        ("Ф.И.О.", "Анна Сергеевна", "Иванова"),
        ("fio", "Анна Сергеевна", "Иванова"),
        ("Имя", "Анна Сергеевна", "Иванова"),  # a plain name field filled with a ФИО
        ("name", "Анна Сергеевна", "Иванова"),
    ],
)
def test_a_form_or_a_files_whole_name_is_split_as_its_field_writes_it(
    header: str, first_name: str, last_name: str
) -> None:
    lead = lead_from_form([(header, "Иванова Анна Сергеевна"), ("email", "a@example.kz")], None)
    assert (lead.first_name, lead.last_name) == (first_name, last_name)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Ирина Ким", Name("Ирина", "Ким")),  # "Здравствуйте, Ким!" was the greeting
        ("Ким Ирина", Name("Ирина", "Ким")),
        ("Kevin Smith", Name("Kevin", "Smith")),
        ("Марина Ильина", Name("Марина", "Ильина")),
    ],
)
def test_a_fio_fields_common_given_name_is_no_surname(written: str, expected: Name) -> None:
    assert split_fio(written) == expected


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("иванова анна", "Иванова Анна"),
        ("анна-мария ким", "Анна-Мария Ким"),
        ("o'neil", "O'Neil"),
        ("ilkin məmmədli", "İlkin Məmmədli"),  # Azerbaijani's capital i is dotted
        ("aruzhan", "Aruzhan"),
        ("ANNA", "ANNA"),  # a capital anywhere: as typed
        ("McDonald", "McDonald"),
        ("ван дер Берг", "ван дер Берг"),
    ],
)
def test_a_name_typed_in_lowercase_is_capitalized(typed: str, kept: str) -> None:
    assert capitalized(typed) == kept


def test_a_form_typed_in_lowercase_greets_the_person_by_a_capitalized_first_name() -> None:
    fields = [("Имя", "иванова анна сергеевна"), ("Фамилия", "иванова"), ("email", "a@example.kz")]
    lead = lead_from_form(fields, None)
    assert (lead.first_name, lead.last_name) == ("Анна Сергеевна", "Иванова")
