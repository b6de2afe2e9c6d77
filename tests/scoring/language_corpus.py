# ruff: noqa: E501  (a table: one lead per line)
"""Multilingual lead-text corpus: the spec the timeframe / ask / red-flag parser must meet.

Each row is one lead as a customer of a small business in Kazakhstan or Azerbaijan
actually typed it: the form's `language` ("kk", "ru", "az", "en"), what they put in the
"when do you plan to buy" field, and their free-text message. Texts are deliberately
messy: typos, Latin letters inside Cyrillic words, Kazakh in Cyrillic, in the 2018 Latin
alphabet ("búgin", "qońyraý") and in informal chat Latin ("bugin", "qonyrau"),
Azerbaijani with and without its special letters, Russian mixed into kk/az messages, and
non-native English.

Reference date: every timeframe was stated on Wednesday 2026-12-02. Expectations were set
by hand from that date:

* hot  - purchase within 14 days: now / today / urgent / asap / tomorrow / this week /
         next week (Mon 7 - Sun 13 Dec) / within 10 days / a date on or before 2026-12-16;
* warm - within 15-90 days: 3 weeks, 6 weeks, next month / January (30-60 days),
         end of month (2026-12-31, 29 days), "1 февраля" (2027-02-01, 61 days), 2 months;
* cold - over 90 days, "later" / "not sure" / "next year" / "in half a year", or no
         timeframe at all.

A date without a year means its next occurrence (15.03 -> 2027-03-15). Horizons between
12 and 17 days or between 85 and 95 days are avoided on purpose (hence no "2 weeks",
"3 months" or "in March"), so every expectation is unambiguous.

An explicit ask in the message (call me back, what is the price, I want to order / buy
now, show me a demo) makes the lead hot whatever the timeframe says. Red-flag rows (spam,
"just asking", barter, VIP demands) carry no ask and no timeframe and are cold. No row
mixes an ask with a red flag. Timeframes written inside the message are not the
parser's business here: only the timeframe field sets the horizon.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    language: str  # the lead's `language`: "kk", "ru", "az" or "en" (what the form says; the text may mix)
    timeframe: str | None  # what the person typed in the "when do you plan to buy" field (None: left empty)
    message: str  # the free-text message they wrote ("" when none)
    temperature: str  # expected: "hot", "warm" or "cold"
    ask: (
        str | None
    )  # expected explicit ask recognised in the message: "callback_request", "price_request", "one_click_order" (they want to order/buy now), "demo_request", or None
    flag: str | None = (
        None  # expected red flag in the message: "spam", "inquiry_only" ("just asking", no intent to buy), "barter", "vip_demands", or None
    )


ROWS: list[Row] = [
    # ------------------------------------------------------------------ kk (Kazakh)
    # timeframe only
    Row("kk", "қазір", "", "hot", None),
    Row("kk", "бүгін", "", "hot", None),
    Row("kk", "búgin", "", "hot", None),  # 2018 Latin alphabet: "today"
    Row("kk", "bugin", "", "hot", None),  # informal Latin: "today"
    Row("kk", "ШҰҒЫЛ!!!", "", "hot", None),  # "URGENT!!!"
    Row("kk", "erteń", "", "hot", None),  # 2018 Latin: "tomorrow"
    Row(
        "kk", "келесі аптада", "Кеңсеге жиһаз қарап жүрміз", "hot", None
    ),  # next week = 5-11 days; "looking at office furniture"
    Row("kk", "10 күн ішінде", "", "hot", None),  # within 10 days
    Row("kk", "3 аптадан кейін", "", "warm", None),  # in 3 weeks: 21 days
    Row("kk", "келесі айда", "", "warm", None),  # next month (January): 30-60 days
    Row("kk", "ай соңына дейін", "", "warm", None),  # by the end of the month: 2026-12-31, 29 days
    Row("kk", "1 ақпан", "", "warm", None),  # 1 Feb 2027: 61 days
    Row("kk", "2 ай", "", "warm", None),  # 2 months: ~60 days
    # asks
    Row(
        "kk",
        None,
        "Сәлеметсіз бе! Маған қоңырау шалыңызшы, нөмірім 8 701 123 45 67",
        "hot",
        "callback_request",
    ),
    Row(
        "kk", None, "Сәлеметсіз бе, перезвоните пожалуйста", "hot", "callback_request"
    ),  # Kazakh greeting + Russian ask
    Row("kk", None, "qonyrau shalynyz pls", "hot", "callback_request"),  # informal Latin
    Row(
        "kk", "келесі жылы", "Бағасы қанша? Орнатуымен бірге", "hot", "price_request"
    ),  # next year, but the price ask wins
    Row("kk", None, "Sálemetsiz be! Baǵasy qansha? Prais jiberińizshi", "hot", "price_request"),  # 2018 Latin
    Row("kk", None, "Прайс жіберіңізші ватсапқа 🙏", "hot", "price_request"),
    Row("kk", "қазір", "Тапсырыс бергім келеді, 2 дана", "hot", "one_click_order"),
    Row(
        "kk", None, "Здравствуйте, сатып алғым келеді, қалай төлеймін?", "hot", "one_click_order"
    ),  # "I want to buy, how do I pay?"
    Row(
        "kk", "2 айдан кейін", "Демо көрсетіңізші, командамызға таныстырғымыз келеді", "hot", "demo_request"
    ),  # warm horizon, demo ask wins
    Row(
        "kk", "6 ай", "Demo kórsete alasyz ba? Onlaın bolsa da bolady", "hot", "demo_request"
    ),  # 2018 Latin; 6 months, demo ask wins
    # red flags
    Row("kk", None, "СПАМ. Жарнама: Instagram аккаунтыңызға 10 000 жазылушы, арзан!", "cold", None, "spam"),
    Row(
        "kk", None, "Жай сұрап тұрмын, әзірге алмаймын", "cold", None, "inquiry_only"
    ),  # "just asking, not buying for now"
    Row(
        "kk", None, "jai surap turmyn, ali almaimyn", "cold", None, "inquiry_only"
    ),  # informal Latin: "just asking, not buying yet"
    Row(
        "kk",
        None,
        "Айырбас ұсынамыз: сіз бізге тоңазытқыш, біз сізге жарнама жасаймыз",
        "cold",
        None,
        "barter",
    ),
    Row(
        "kk",
        None,
        "Бізге ерекше жағдай керек: VIP қызмет, жеке менеджер және 50% жеңілдік",
        "cold",
        None,
        "vip_demands",
    ),
    # cold / neutral
    Row("kk", None, "", "cold", None),  # nothing stated at all
    Row("kk", "келесі жылы", "", "cold", None),  # next year
    Row("kk", "әлі білмеймін", "Ойланып жатырмыз", "cold", None),  # "don't know yet" / "we're thinking"
    Row("kk", None, "Шымкентке жеткізу бар ма?", "cold", None),  # delivery question, no ask
    Row("kk", "жарты жылдан кейін", "", "cold", None),  # in half a year
    Row(
        "kk", "кейінірек", "Кепілдік қанша жыл?", "cold", None
    ),  # "later"; warranty length question - "қанша" here is not a price ask
    Row("kk", "Наурыздан кейін", "", "cold", None),  # after Nauryz / after March: 110+ days
    # warm with a neutral message
    Row(
        "kk", "Жаңа жылға дейін", "Қызметкерлерге сыйлық іздеп жүрміз", "warm", None
    ),  # before New Year: 29 days
    Row("kk", "kelesi aida", "salem, ofiske jihaz karap jurmiz", "warm", None),  # informal Latin: next month
    Row("kk", "2027-02-01", "", "warm", None),  # 61 days
    Row("kk", "6 апта", "Қоймаға сөрелер керек болады", "warm", None),  # 6 weeks: 42 days
    # ------------------------------------------------------------------ ru (Russian)
    # timeframe only
    Row("ru", "сейчас", "", "hot", None),
    Row("ru", "срочно", "", "hot", None),
    Row("ru", "СРОЧНО!!!", "", "hot", None),
    Row("ru", "срочна", "", "hot", None),  # typo
    Row("ru", "завтра", "", "hot", None),
    Row("ru", "на этой неделе", "", "hot", None),
    Row("ru", "через 10 дней", "Нужно оборудовать кофейню", "hot", None),
    Row("ru", "до 10 числа", "", "hot", None),  # 2026-12-10: 8 days
    Row("ru", "10.12", "", "hot", None),  # 2026-12-10: 8 days
    Row("ru", "через 3 недели", "", "warm", None),  # 21 days
    Row("ru", "до конца месяца", "", "warm", None),  # 2026-12-31: 29 days
    Row("ru", "1 февраля", "", "warm", None),  # 1 Feb 2027: 61 days
    Row("ru", "через 2 мес", "", "warm", None),  # ~60 days
    Row("ru", "5 января", "", "warm", None),  # 2027-01-05: 34 days
    # asks
    Row("ru", None, "Перезвонитe, пожалуйста", "hot", "callback_request"),  # the last "e" is Latin
    Row("ru", None, "Наберите меня после 18:00, пожалуйста", "hot", "callback_request"),
    Row("ru", None, "Добрый день! Сколько стоит доставка и установка?", "hot", "price_request"),
    Row(
        "ru", "в следующем году", "Скиньте прайс на ватсап", "hot", "price_request"
    ),  # next year, but the price ask wins
    Row("ru", None, "скока стоит??", "hot", "price_request"),  # slang for "сколько стоит"
    Row(
        "ru", None, "Салем! Бағасы қанша? Нам на 3 офиса", "hot", "price_request"
    ),  # ru form, Kazakh price question
    Row("ru", None, "Хочу заказать 2 шт, как оплатить?", "hot", "one_click_order"),
    Row(
        "ru", "не знаю", "Оформляйте заказ, беру сразу 👍", "hot", "one_click_order"
    ),  # vague timeframe, but "I'll take it"
    Row(
        "ru",
        "через 2 мес",
        "Покажите демо, пожалуйста, хотим посмотреть как работает CRM",
        "hot",
        "demo_request",
    ),  # warm horizon, demo ask wins
    Row("ru", None, "Можно демонстрацию для нашей команды в Zoom?", "hot", "demo_request"),
    # red flags
    Row(
        "ru",
        None,
        "Рассылка рекламы: купите базу email-адресов предприятий Казахстана, 50 000 контактов",
        "cold",
        None,
        "spam",
    ),
    Row("ru", None, "Просто спросить, покупать пока не планирую", "cold", None, "inquiry_only"),
    Row(
        "ru",
        None,
        "Предлагаем бартер: ваше оборудование в обмен на рекламу в нашем Instagram (40к подписчиков)",
        "cold",
        None,
        "barter",
    ),
    Row(
        "ru",
        None,
        "Работаем только на особых условиях: VIP-обслуживание, отсрочка платежа 180 дней, личный менеджер",
        "cold",
        None,
        "vip_demands",
    ),
    # cold / neutral
    Row("ru", None, "", "cold", None),  # nothing stated at all
    Row("ru", "пока думаем", "", "cold", None),
    Row("ru", "в следующем году", "", "cold", None),
    Row("ru", None, "А доставка в Караганду есть?", "cold", None),  # delivery question, no ask
    Row("ru", "15.03", "", "cold", None),  # 2027-03-15: 103 days
    Row("ru", "летом", "Присматриваемся к вариантам", "cold", None),  # summer 2027: ~180+ days
    Row("ru", "через полгода", "", "cold", None),
    Row(
        "ru", "не знаю", "Сколько лет гарантия на компрессор?", "cold", None
    ),  # warranty question - "сколько" here is not a price ask
    # warm with a neutral message
    Row(
        "ru", "к Новому году", "Ищем подарки для сотрудников, человек 40", "warm", None
    ),  # by 31 Dec: 29 days
    Row("ru", "в январе", "Рассматриваем обновление техники в офисе", "warm", None),  # 30-60 days
    Row("ru", "полтора месяца", "", "warm", None),  # ~45 days
    Row("ru", "2027-01-20", "Открываем второй филиал", "warm", None),  # 49 days
    # ------------------------------------------------------------------ az (Azerbaijani)
    # timeframe only
    Row("az", "indi", "", "hot", None),
    Row("az", "dərhal", "", "hot", None),
    Row("az", "TƏCİLİ!!", "", "hot", None),  # "URGENT!!"
    Row("az", "bu gün", "", "hot", None),
    Row("az", "sabah", "", "hot", None),  # tomorrow
    Row("az", "bu hefte", "", "hot", None),  # "bu həftə" without special letters: this week
    Row("az", "gələn həftə", "Kafe üçün avadanlıq baxırıq", "hot", None),  # next week = 5-11 days
    Row("az", "10 gün ərzində", "", "hot", None),
    Row("az", "3 həftəyə", "", "warm", None),  # in 3 weeks: 21 days
    Row("az", "gələn ay", "", "warm", None),  # next month: 30-60 days
    Row("az", "gelen ay", "", "warm", None),  # same, no special letters
    Row("az", "ayın sonuna qədər", "", "warm", None),  # 2026-12-31: 29 days
    Row("az", "1 fevral", "", "warm", None),  # 1 Feb 2027: 61 days
    Row("az", "2 ay", "", "warm", None),  # ~60 days
    # asks
    Row("az", None, "Salam, mənə zəng edin zəhmət olmasa", "hot", "callback_request"),
    Row("az", None, "zeng edin, nomrem 050 123 45 67", "hot", "callback_request"),  # no special letters
    Row("az", None, "Salam, перезвоните пожалуйста", "hot", "callback_request"),  # az greeting + Russian ask
    Row(
        "az", "gələn il", "Qiyməti nə qədərdir?", "hot", "price_request"
    ),  # next year, but the price ask wins
    Row("az", None, "qiymeti necedir? 10 eded lazimdir", "hot", "price_request"),  # no special letters
    Row("az", None, "Qiymət siyahısını WhatsApp-a göndərin 🙏", "hot", "price_request"),
    Row("az", "indi", "Sifariş vermək istəyirəm, 3 ədəd", "hot", "one_click_order"),
    Row(
        "az", None, "almaq isteyirem, nece odenis edim?", "hot", "one_click_order"
    ),  # "I want to buy, how do I pay?"
    Row(
        "az", "2 ay", "Demo göstərin, komandamız baxmaq istəyir", "hot", "demo_request"
    ),  # warm horizon, demo ask wins
    Row("az", None, "Demo görmək mümkündür? Onlayn da olar", "hot", "demo_request"),
    # red flags
    Row(
        "az", None, "SPAM. Reklam: Instagram səhifəniz üçün 10 000 izləyici, endirimlə!", "cold", None, "spam"
    ),
    Row(
        "az", None, "Sadəcə soruşuram, almaq fikrim yoxdur", "cold", None, "inquiry_only"
    ),  # "just asking, no plan to buy"
    Row(
        "az", None, "maraq ucun soruşuram", "cold", None, "inquiry_only"
    ),  # "asking out of curiosity", half without special letters
    Row(
        "az",
        None,
        "Barter təklif edirik: sizin məhsul, bizim reklam xidməti. Mübadilə mümkündür?",
        "cold",
        None,
        "barter",
    ),
    Row(
        "az",
        None,
        "Bizə xüsusi şərait lazımdır: VIP xidmət, şəxsi menecer və 40% endirim",
        "cold",
        None,
        "vip_demands",
    ),
    # cold / neutral
    Row("az", None, "", "cold", None),  # nothing stated at all
    Row("az", "gələn il", "", "cold", None),  # next year
    Row("az", "hələ bilmirəm", "Fikirləşirik", "cold", None),  # "don't know yet" / "we're thinking"
    Row("az", None, "Gəncəyə çatdırılma var?", "cold", None),  # delivery question, no ask
    Row("az", "Novruzdan sonra", "", "cold", None),  # after Novruz (~20 Mar 2027): 108+ days
    Row("az", "6 ay sonra", "", "cold", None),
    Row(
        "az", "4 ay", "Zəmanət neçə ildir?", "cold", None
    ),  # 120 days; warranty question - "neçə" here is not a price ask
    # warm with a neutral message
    Row("az", "Yeni ilə qədər", "İşçilər üçün hədiyyə axtarırıq", "warm", None),  # before New Year: 29 days
    Row("az", "yanvarda", "Ofis üçün avadanlıq baxırıq", "warm", None),  # January: 30-60 days
    Row("az", "15.01.2027", "", "warm", None),  # 44 days
    Row("az", "6 həftə", "Yeni filial açırıq", "warm", None),  # 42 days
    # ------------------------------------------------------------------ en (English)
    # timeframe only
    Row("en", "asap", "", "hot", None),
    Row("en", "now", "", "hot", None),
    Row("en", "today", "", "hot", None),
    Row("en", "URGENT!!", "", "hot", None),
    Row("en", "tomorrow", "", "hot", None),
    Row("en", "this week", "", "hot", None),
    Row("en", "next week", "we need equipment for new cafe", "hot", None),  # Mon 7 - Sun 13 Dec: 5-11 days
    Row("en", "within 10 days", "", "hot", None),
    Row("en", "2026-12-10", "", "hot", None),  # 8 days
    Row("en", "3w", "", "warm", None),  # 21 days
    Row("en", "next month", "", "warm", None),  # January: 30-60 days
    Row("en", "by end of month", "", "warm", None),  # 2026-12-31: 29 days
    Row("en", "P2M", "", "warm", None),  # ISO 8601 duration: 2 months
    Row("en", "Feb 1", "", "warm", None),  # 1 Feb 2027: 61 days
    # asks
    Row("en", None, "Please call me back", "hot", "callback_request"),
    Row("en", None, "pls call me after 6pm, my number +7 777 123 4567", "hot", "callback_request"),
    Row("en", None, "Hello, can you call me? Thanks", "hot", "callback_request"),
    Row("en", "next year", "how much is it?", "hot", "price_request"),  # next year, but the price ask wins
    Row("en", None, "Send me price list please", "hot", "price_request"),
    Row("en", None, "What is price for 10 pcs?", "hot", "price_request"),  # non-native wording
    Row("en", "now", "I want to order 3 units, how can I pay", "hot", "one_click_order"),
    Row("en", None, "i want buy now, where to pay?", "hot", "one_click_order"),  # non-native wording
    Row("en", "in 2 months", "can I get a demo?", "hot", "demo_request"),  # warm horizon, demo ask wins
    Row("en", None, "Could you show demo for our team on Zoom?", "hot", "demo_request"),
    # red flags
    Row("en", None, "SPAM!!! Best SEO services, top-1 Google guaranteed, 90% discount", "cold", None, "spam"),
    Row("en", None, "Just asking, not planning to buy", "cold", None, "inquiry_only"),
    Row("en", None, "only want to know, just curious", "cold", None, "inquiry_only"),
    Row(
        "en",
        None,
        "We propose barter: your equipment in exchange of our advertising services",
        "cold",
        None,
        "barter",
    ),
    Row(
        "en",
        None,
        "We need VIP treatment and special terms: personal manager 24/7, 60 days deferred payment",
        "cold",
        None,
        "vip_demands",
    ),
    # cold / neutral
    Row("en", None, "", "cold", None),  # nothing stated at all
    Row("en", "not sure", "", "cold", None),
    Row("en", "next year", "", "cold", None),
    Row("en", None, "Do you deliver to Aktobe?", "cold", None),  # delivery question, no ask
    Row("en", "later", "still thinking", "cold", None),
    Row("en", "in half a year", "", "cold", None),
    Row("en", "6 months", "How long is warranty?", "cold", None),  # warranty question, no ask
    # warm with a neutral message
    Row("en", "before New Year", "looking for corporate gifts for staff", "warm", None),  # by 31 Dec: 29 days
    Row("en", "in January", "We are comparing few suppliers", "warm", None),  # 30-60 days
    Row("en", "2027-02-01", "", "warm", None),  # 61 days
    Row("en", "in 1.5 month", "opening new branch in Astana", "warm", None),  # ~45 days
    # negated: "not now" is no "now", "don't call me" no callback request (found by a review:
    # each made the lead hot and handed it to a rep, a call promised within 15 minutes)
    Row("ru", "не сейчас", "", "cold", None),
    Row("ru", "не срочно", "просто подбираем варианты на будущее", "cold", None),
    Row("ru", "не в этом году", "", "cold", None),
    Row("ru", "сейчас не надо", "", "cold", None),
    Row("ru", "не сейчас, через месяц", "", "warm", None),  # the horizon the text goes on to give
    Row("ru", "не знаю, наверное через месяц", "", "warm", None),  # "не знаю" only where nothing is stated
    Row("ru", "срочно, нет времени ждать", "", "hot", None),  # the comma ends the "нет"
    Row("ru", "не позднее 10.12", "", "hot", None),  # a deadline, not a negation
    Row("ru", None, "Не звоните, пишите на почту", "cold", None),
    Row("ru", None, "Вы не могли бы перезвонить сегодня?", "hot", "callback_request"),
    Row("ru", None, "Возьму паузу, подумаю", "cold", None),
    Row("en", "not now", "", "cold", None),
    Row("en", "not urgent", "", "cold", None),
    Row("en", "asap - today", "", "hot", None),  # "-" means no timeframe only where none is stated
    Row("en", None, "Please don't call me, email only", "cold", None),
    Row("en", None, "Do not call me, send the catalogue by email", "cold", None),
    Row("kk", "қазір емес", "", "cold", None),
    Row("kk", None, "Маған қоңырау шалмаңыз, хат жазыңыз", "cold", None),
    Row("kk", None, "Хабарласпаңыз, өзім жазамын", "cold", None),
    Row("kk", None, "Qońyraý shalmańyz, hat jazyńyz", "cold", None),
    Row("kk", None, "qonyrau shalmanyz pls", "cold", None),
    Row("kk", None, "Habarlaspańyz, ózim jazamyn", "cold", None),
    Row("kk", None, "Erteń qońyraý shalyńyz", "hot", "callback_request"),  # the positive form stays an ask
    Row("az", "indi yox", "", "cold", None),
    Row("az", "təcili deyil", "", "cold", None),
    Row("az", None, "Mənə zəng etməyin, email yazın", "cold", None),
    Row("az", None, "Zəng vurmayın, özüm yazacam", "cold", None),
    # the person's mail filter, not spam (found by a review: -100 and disqualified for good)
    Row(
        "en",
        None,
        "Your offer landed in my spam folder. Please call me back today",
        "hot",
        "callback_request",
    ),
    Row("ru", None, "Ваше письмо попало в спам, перезвоните пожалуйста", "hot", "callback_request"),
    Row("az", None, "Məktubunuz spam qovluğuna düşüb, zəng edin", "hot", "callback_request"),
]
