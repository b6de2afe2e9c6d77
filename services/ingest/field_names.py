# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic in the names is the point here)
"""The lead field a form's or an import's column names, as people and website builders name
them: any case and punctuation ("Email", "E-mail", "Phone Number"), Contact Form 7's `your-*`,
Tilda's `Name` / `Phone` / `Email`, and the names a Russian, Kazakh or Azerbaijani export
gives ("Телефон", "Эл. почта", "Аты", "Soyad", "E-poçt"). A whole name is `WHOLE_NAME`, first
name first ("Имя", "Ad soyad"), or `FIO`, surname first ("ФИО", "Ф.И.О.", "Soyad ad"): each is
split its own way (`person_names`). Consent is the marketing opt-in's column only ("Согласие на
рассылку", "Подписка", "Abunə"), never the compulsory box for the processing of personal data.
Pure."""

import re
import unicodedata

from services.ingest.schemas import LEAD_FIELDS

WHOLE_NAME = "name"  # split into first and last name, the first name first
FIO = "fio"  # a whole name written surname first, Фамилия Имя Отчество (`person_names.split_fio`)
_FIELDS = LEAD_FIELDS - {"utm", "custom"}
_PUNCTUATION = re.compile(r"[\W_]+")

_SAID: dict[str, tuple[str, ...]] = {
    WHOLE_NAME: (
        "full_name",
        "your_name",
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
    FIO: (
        "фио",
        "ф_и_о",
        "фамилия_имя_отчество",
        "фамилия_имя",
        "фамилия_и_имя",
        "тегі_аты",
        "тегі_аты_әкесінің_аты",
        "soyad_ad",
        "soyadı_adı",
        "soyadi_adi",
        "soyad_ad_ata_adı",
        "soyad_ad_ata_adi",
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
    # The marketing opt-in only: consent to be sent mailings or contacted. Not a bare "Согласие",
    # "Келісім" or "Razılıq", nor "Согласие на обработку (персональных данных)": a form's
    # compulsory box for the processing of personal data, which is no opt-in.
    "consent": (
        "marketing_consent",
        "consent_to_marketing",
        "opt_in",
        "optin",
        "marketing_opt_in",
        "email_opt_in",
        "newsletter",
        "subscribe",
        "subscribed",
        "subscribe_to_newsletter",
        "newsletter_subscription",
        "согласие_на_рассылку",
        "согласие_на_рассылки",
        "согласие_на_получение_рассылки",
        "согласие_на_получение_рассылок",
        "согласие_на_рекламную_рассылку",
        "согласие_на_получение_рекламы",
        "подписка",
        "подписка_на_рассылку",
        "подписка_на_новости",
        "рассылкаға_келісім",
        "таратылымға_келісім",
        "жарнамаға_келісім",
        "хабарлама_алуға_келісім",
        "abunə",
        "abune",
        "abunəlik",
        "abunelik",
        "bülletenə_abunə",
        "xəbərlərə_abunə",
        "göndərişlərə_razılıq",
    ),
}
_BY_NAME = {said: field for field, names in _SAID.items() for said in names}


def field_named(name: str) -> str | None:
    """The lead field (or `WHOLE_NAME`, or `FIO`) a column of this name fills; None for another."""
    if name in _FIELDS:
        return name
    plain = plain_name(name)
    if plain in _FIELDS or plain in (WHOLE_NAME, FIO):
        return plain
    return _BY_NAME.get(plain)


def plain_name(name: str) -> str:
    """A column's name as the names here are written: lower case, composed, words joined by `_`."""
    # A Mac's file writes й as и and a breve; Azerbaijani's capital İ lowers to i and a dot.
    name = unicodedata.normalize("NFC", name).replace("İ", "i")
    return _PUNCTUATION.sub("_", name.strip().lower().replace("ё", "е")).strip("_")
