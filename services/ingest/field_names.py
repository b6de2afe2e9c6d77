# ruff: noqa: RUF001  (Cyrillic in the names is the point here)
"""The lead field a form's or an import's column names, as people and website builders name
them: any case and punctuation ("Email", "E-mail", "Phone Number"), Contact Form 7's `your-*`,
Tilda's `Name` / `Phone` / `Email`, and the names a Russian, Kazakh or Azerbaijani export
gives ("Телефон", "Эл. почта", "Аты", "Soyad", "E-poçt"). Pure."""

import re

from services.ingest.schemas import LEAD_FIELDS

WHOLE_NAME = "name"  # split into first and last name
_FIELDS = LEAD_FIELDS - {"utm", "custom"}
_PUNCTUATION = re.compile(r"[\W_]+")

_SAID: dict[str, tuple[str, ...]] = {
    WHOLE_NAME: (
        "full_name",
        "your_name",
        "fio",
        "фио",
        "имя",
        "ваше_имя",
        "имя_фамилия",
        "аты",
        "аты_жөні",
        "атыңыз",
        "adınız",
        "ad_soyad",
        "adiniz",  # not "ad": an export's column of adverts
    ),
    "first_name": ("firstname", "first", "given_name"),
    "last_name": ("lastname", "surname", "family_name", "фамилия", "тегі", "soyad", "soyadı", "soyadi"),
    "email": (
        "e_mail",
        "mail",
        "email_address",
        "your_email",
        "почта",
        "эл_почта",
        "электронная_почта",
        "e_почта",
        "пошта",
        "эл_пошта",
        "электрондық_пошта",
        "e_poçt",
        "e_poct",
        "elektron_poçt",
        "elektron_poct",
    ),
    "phone": (
        "tel",
        "telephone",
        "phone_number",
        "mobile",
        "mobile_phone",
        "your_tel",
        "your_phone",
        "телефон",
        "тел",
        "номер_телефона",
        "мобильный",
        "мобильный_телефон",
        "телефон_нөмірі",
        "ұялы_телефон",
        "telefon",
        "telefon_nömrəsi",
        "telefon_nomresi",
        "mobil",
        "mobil_nömrə",
    ),
    "company": (
        "company_name",
        "organization",
        "organisation",
        "компания",
        "организация",
        "название_компании",
        "компания_атауы",
        "ұйым",
        "şirkət",
        "sirket",
        "şirkətin_adı",
        "təşkilat",
    ),
    "job_title": ("position", "role", "должность", "лауазым", "лауазымы", "vəzifə", "vezife"),
    "city": ("город", "қала", "şəhər", "seher"),
    "country": ("страна", "ел", "ölkə", "olke"),
    "message": (
        "your_message",
        "comment",
        "comments",
        "question",
        "сообщение",
        "комментарий",
        "вопрос",
        "хабарлама",
        "пікір",
        "сұрақ",
        "mesaj",
        "şərh",
        "serh",
        "sual",
    ),
    "budget": ("бюджет", "büdcə", "budce"),
    "birthday": ("date_of_birth", "dob", "дата_рождения", "день_рождения", "туған_күні", "doğum_tarixi"),
    "language": ("язык", "тіл", "dil"),
}
_BY_NAME = {said: field for field, names in _SAID.items() for said in names}


def field_named(name: str) -> str | None:
    """The lead field (or `WHOLE_NAME`) a column of this name fills; None for another."""
    if name in _FIELDS:
        return name
    plain = _PUNCTUATION.sub("_", name.strip().lower().replace("ё", "е")).strip("_")
    if plain in _FIELDS or plain == WHOLE_NAME:
        return plain
    return _BY_NAME.get(plain)
