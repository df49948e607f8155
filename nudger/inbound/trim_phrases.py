"""Multilingual phrase tables for reply trimming (data, plus the few patterns compiled from it).

Everything here describes how mail clients *format* replies, in the languages our users write in:
the verbs that end a quote header ("wrote:", "a écrit :", "schrieb …:", "napisał(a):", "写道："), the
words that open one ("On", "Am", "Le", "W dniu", "在"), the field labels of Outlook-style header blocks
("From:/Sent:/To:/Subject:", "Von:/Gesendet:", "差出人:/送信日時:" …), the captions of separator lines
("-----Original Message-----", "---------- Forwarded message ---------", "Begin forwarded message:") and
the leads and tails of mobile/app footers ("Sent from my …", "Von meinem … gesendet", "…から送信").

Lookups are sets, prefix/suffix tuples (`str.startswith`/`str.endswith` run in C) or small anchored
patterns without nested quantifiers, so they stay linear on hostile text. All phrases are lower case.
Languages: en, de, fr, es, it, pt, nl, sv, da, no, fi, pl, cs, ru, uk, tr, ja, zh, ko (plus a few
neighbours — ca, vi, hu, ro, el — where a phrase costs nothing).
"""

from __future__ import annotations

import re
import unicodedata
from enum import IntEnum


def fold(text: str) -> str:
    """Lower case for matching: composed accents (macOS may send decomposed ones), Turkish "İ" → "i"."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFC", text).lower().replace("i\u0307", "i")


# --------------------------------------------------------------------------------------------- dashes

# ASCII hyphen-minus and the Unicode dashes some clients (ProtonMail, Word) put in separator lines.
DASHES = "-‐‑‒–—―"
SEPARATOR_CHARS = DASHES + "_=*#~ \t"

# --------------------------------------------------------------------------------------- quote headers

# Words that open a date-first quote header: "On 10 Mar 2025, … wrote:", "Am 10.03.2025 schrieb …:".
QUOTE_OPENERS: tuple[str, ...] = (
    "on ",  # en
    "at ",  # en (Eudora, Outlook Express: "At 10/03/2025 08:00 AM, you wrote:")
    "in message ",  # en (old Unix mailers: "In message <id>, Anna writes:")
    "am ",  # de
    "le ",  # fr
    "el ",  # es, ca
    "il giorno ",  # it
    "il ",  # it
    "em ",  # pt
    "no dia ",  # pt
    "op ",  # nl
    "den ",  # sv, da, no
    "på ",  # no
    "w dniu ",  # pl
    "dnia ",  # pl
    "dne ",  # cs
    "в ",  # ru
    "у ",  # uk
    "vào ",  # vi
    "在",  # zh (Thunderbird: "在 2025/3/10 8:00, X 写道:")
)

# Verbs that end a quote header, followed by ":" (written as a whole word, after a space or a ">").
QUOTE_VERBS: tuple[str, ...] = (
    # en
    "wrote",
    "writes",
    # de
    "schrieb",
    "schreibt",
    "geschrieben",
    # fr
    "a écrit",
    "a ecrit",
    "écrit",
    # es, ca
    "escribió",
    "escribio",
    "ha escrito",
    "va escriure",
    # it
    "ha scritto",
    "scrisse",
    # pt
    "escreveu",
    # nl
    "schreef",
    "geschreven",
    # sv, da, no
    "skrev",
    "skreiv",
    # fi
    "kirjoitti",
    # pl
    "napisał",
    "napisała",
    "napisał(a)",
    "pisze",
    # cs
    "napsal",
    "napsala",
    "napsal(a)",
    "napsal/a",
    "píše",
    # ru
    "написал",
    "написала",
    "написал(а)",
    "пишет",
    # uk
    "написав",
    "написала",
    "написав(-ла)",
    "написав(ла)",
    "пише",
    # tr
    "yazdı",
    # vi, hu, ro, el
    "đã viết",
    "írta",
    "a scris",
    "έγραψε",
)

# Verbs that end a header only when quoted lines follow it ("On …, Anna sent:" / "> …"): alone, a line
# like "On 10 March at 09:00 we met, and Priya said:" is prose.
QUOTE_WEAK_VERBS: tuple[str, ...] = ("sent", "said", "says")

# Verbs that may be followed by the writer's name (and date) before the colon:
# "Am … schrieb Anna <a@x>:", "Op … schreef Anna:", "Den … skrev Anna:", "Anna kirjoitti 10.3.2025:".
QUOTE_VERBS_BEFORE_NAME: tuple[str, ...] = (
    "schrieb",
    "schreef",
    "skrev",
    "skreiv",
    "kirjoitti",
    "wrote on",
    "írta",
)

# Header endings written without a space before them (CJK scripts): "…写道：", "…のメール:", "…님이 작성:".
QUOTE_VERBS_CJK: tuple[str, ...] = (
    "写道",
    "寫道",
    "写了",
    "のメール",
    "が書きました",
    "は書きました",
    "書きました",
    "작성",
    "님이 작성",
    "님이 씀",
    "쓴 글",
)

# Phrases that open a name-first header ending in a bare colon: "Quoting Anna <a@x>:" (Horde),
# "Wiadomość napisana przez Anna <a@x> w dniu 10.03.2025, o godz. 08:00:" (Apple Mail, Polish).
QUOTE_LEADS: tuple[str, ...] = (
    "quoting ",
    "zitat von ",
    "citando ",
    "citation de ",
    "citazione di ",
    "cytując ",
    "wiadomość napisana przez ",
    "mensagem de ",
)

_WORD_VERBS = "|".join(re.escape(verb) for verb in QUOTE_VERBS)
_NAME_VERBS = "|".join(re.escape(verb) for verb in QUOTE_VERBS_BEFORE_NAME)
_CJK_VERBS = "|".join(re.escape(verb) for verb in QUOTE_VERBS_CJK)

# The end of a header: a verb, optional spaces, a colon (optional only for dash-wrapped headers:
# "---- Anna wrote ----"). Searched in the last `VERB_TAIL_CHARS` characters of the (lower-cased) header.
VERB_TAIL_CHARS = 40
QUOTE_VERB_END_RE = re.compile(rf"(?:(?<![\w])(?:{_WORD_VERBS})|(?:{_CJK_VERBS}))\s*[:：]?$")
QUOTE_WEAK_VERB_END_RE = re.compile(rf"(?<![\w])(?:{'|'.join(QUOTE_WEAK_VERBS)})\s*[:：]?$")
# Or a verb, then the name (and maybe a date with a time: "08:00"), then the colon. Searched in the last
# `HEADER_TAIL_CHARS` characters, and only when one of these verbs occurs there at all.
HEADER_TAIL_CHARS = 260
QUOTE_NAME_VERB_END_RE = re.compile(
    rf"(?<![\w])(?:{_NAME_VERBS})(?![\w])(?:[^:：\n]|(?<=\d)[:：](?=\d)){{0,200}}[:：]$"
    r"|(?<![\w])írta\s{0,3}\([^()\n]{0,120}\)\s{0,3}[:：]$"  # hu: "… ezt írta (időpont: 2025. márc. 10.):"
)

# Gmail (ru, ja, …) and Yandex end a date-first header with the address and a bare colon:
# "пн, 10 мар. 2025 г. в 08:00, Анна <a@x>:" — the address, an optional closing bracket, a colon.
ADDRESS_COLON_END_RE = re.compile(r"@[^\s<>()\[\]@]{1,255}[>)\]]?\s*[:：]$")
# "2011/4/7 Anna <a@x>" followed by quoted lines (old Gmail): the address closes the line.
ADDRESS_END_RE = re.compile(r"@[^\s<>()\[\]@]{1,255}[>)\]]$")

# Header starts: a date or time up front, or a short word (weekday) then a digit: "пн, 10", "ma 10.3.",
# "pon., 10", "Montag, 10.", "2025-03-10", "10. mar.".
DATE_START_RE = re.compile(r"\d|[^\W\d_]{1,12}\.?,?\s{1,3}\d")
HAS_DIGIT_RE = re.compile(r"\d")
# What makes a date a date in a header: a time ("08:00", "8.00") or a year ("2025", "2025年").
CLOCK_TIME_RE = re.compile(r"\d{1,2}:\d{2}")
TIME_OR_YEAR_RE = re.compile(r"\d{1,2}[:.]\d{2}|(?<!\d)(?:19|20)\d{2}(?!\d)")

# ------------------------------------------------------------------------------ header blocks (Outlook)


class Field(IntEnum):
    """The kind of one Outlook-style header field."""

    FROM = 1
    DATE = 2
    TO = 3
    CC = 4
    SUBJECT = 5
    OTHER = 6


_FIELD_WORDS: dict[Field, tuple[str, ...]] = {
    Field.FROM: (
        "from", "von", "de", "da", "van", "från", "fra", "frå", "lähettäjä", "od", "от", "від", "kimden",
        "差出人", "送信者", "发件人", "寄件者", "寄件人", "보낸 사람", "보낸사람",
        "từ", "feladó", "expeditor", "de la", "από", "מאת", "من", "dari", "nuo", "saatja",
    ),
    Field.DATE: (
        "sent", "date", "gesendet", "datum", "envoyé", "envoyé le", "date d'envoi", "enviado", "enviado el",
        "enviada", "enviado em", "fecha", "inviato", "data", "verzonden", "verstuurd", "skickat",
        "skickades", "sendt", "lähetetty", "päivämäärä", "wysłano", "wysłane", "data wysłania", "odesláno",
        "datum odeslání", "отправлено", "дата", "надіслано", "відправлено", "gönderildi", "gönderilme",
        "tarih", "送信日時", "日付", "发送时间", "發送時間", "日期", "寄件日期", "傳送時間", "时间", "時間",
        "보낸 날짜", "날짜", "đã gửi", "ngày", "elküldve", "dátum", "trimis", "poslano", "odoslané",
        "изпратено", "saadetud", "išsiųsta", "enviat", "στάλθηκε", "ημερομηνία", "נשלח", "תאריך",
        "أرسلت", "تاريخ الإرسال", "التاريخ", "dikirim", "tanggal",
    ),
    Field.TO: (
        "to", "an", "à", "a", "para", "aan", "till", "til", "vastaanottaja", "do", "кому", "komu", "kime",
        "宛先", "收件人", "收件者", "받는 사람", "받는사람", "tới", "címzett", "către", "za", "до",
        "adressaat", "kam", "per a", "προς", "אל", "إلى", "kepada",
    ),
    Field.CC: (
        "cc", "bcc", "kopie", "kopia", "kopio", "kopi", "копия", "копія", "bilgi", "抄送", "副本", "참조",
        "dw", "másolat", "κοιν.", "עותק", "نسخة", "tembusan",
    ),
    Field.SUBJECT: (
        "subject", "betreff", "objet", "asunto", "oggetto", "assunto", "onderwerp", "ämne", "emne", "aihe",
        "temat", "předmět", "тема", "konu", "件名", "主题", "主旨", "主題", "제목", "chủ đề", "tárgy",
        "subiect", "predmet", "zadeva", "teema", "tēma", "assumpte", "θέμα", "נושא", "الموضوع", "perihal",
        "subjek",
    ),
    Field.OTHER: ("reply-to", "antwort an", "répondre à", "responder a", "importance", "wichtigkeit"),
}  # fmt: skip

FIELD_LABELS: dict[str, Field] = {word: kind for kind, words in _FIELD_WORDS.items() for word in words}
MAX_FIELD_LABEL = max(len(label) for label in FIELD_LABELS)

# ----------------------------------------------------------------------------------- separator lines

# Captions of "-----Original Message-----" lines: everything below is the message being replied to.
ORIGINAL_CAPTIONS = frozenset(
    {
        "original message", "reply message", "original email", "original e-mail", "original mail",
        "ursprüngliche nachricht", "antwort nachricht", "original nachricht", "original-nachricht",
        "originalnachricht", "ursprüngliche mail", "ursprüngliche e-mail",
        "message d'origine", "message d’origine", "message original", "mail original", "courriel original",
        "message initial",
        "mensaje original", "correo original",
        "messaggio originale", "e-mail originale", "email originale",
        "mensagem original", "e-mail original", "email original",
        "oorspronkelijk bericht", "origineel bericht", "oorspronkelijke bericht",
        "ursprungligt meddelande", "originalmeddelande", "ursprungligt e-postmeddelande",
        "oprindelig meddelelse", "original meddelelse", "oprindelig besked", "oprindelig e-mail",
        "opprinnelig melding", "original melding", "opprinnelig e-post",
        "alkuperäinen viesti",
        "oryginalna wiadomość", "wiadomość oryginalna", "pierwotna wiadomość",
        "původní zpráva", "původní e-mail",
        "исходное сообщение", "оригинальное сообщение", "исходное письмо",
        "оригінальне повідомлення", "початкове повідомлення", "вихідне повідомлення", "оригінальний лист",
        "orijinal ileti", "özgün ileti", "orijinal mesaj", "asıl ileti", "özgün mesaj",
        "元のメッセージ", "元のメール", "オリジナルメッセージ",
        "原始邮件", "原始郵件", "邮件原件", "原邮件", "原始信件", "回复的原邮件", "原始信息",
        "replied message",
        "원본 메시지", "원래 메시지", "원본 메일",
        "thư gốc", "eredeti üzenet", "mesaj original",
    }
)  # fmt: skip

# Captions that start a forwarded message: the trimmer keeps a forward whole.
FORWARD_CAPTIONS = frozenset(
    {
        "forwarded message", "forwarded mail", "forwarded email", "forwarded e-mail",
        "begin forwarded message",
        "weitergeleitete nachricht", "anfang der weitergeleiteten nachricht", "weitergeleitete e-mail",
        "weitergeleitete mail",
        "message transféré", "début du message transféré", "début du message réexpédié", "message réexpédié",
        "mensaje reenviado", "inicio del mensaje reenviado", "comienzo del mensaje reenviado",
        "messaggio inoltrato", "inizio messaggio inoltrato", "inizio del messaggio inoltrato",
        "mensagem encaminhada", "início da mensagem encaminhada", "início da mensagem reencaminhada",
        "mensagem reencaminhada", "começo da mensagem encaminhada",
        "doorgestuurd bericht", "begin doorgestuurd bericht", "doorgestuurde e-mail",
        "vidarebefordrat meddelande", "vidarebefordrat brev", "början på vidarebefordrat brev",
        "videresendt meddelelse", "videresendt besked", "start på videresendt besked", "videresendt mail",
        "videresendt melding", "begynnelse på videresendt melding", "videresendt e-post",
        "välitetty viesti", "välitetty viesti alkaa", "edelleenlähetetty viesti",
        "przekazana wiadomość", "wiadomość przekazana", "początek przekazywanej wiadomości",
        "přeposlaná zpráva", "začátek přeposlané zprávy",
        "пересылаемое сообщение", "пересланное сообщение", "начало переадресованного сообщения",
        "переслане повідомлення", "пересилане повідомлення", "початок пересланого повідомлення",
        "iletilen ileti", "iletilmiş ileti", "yönlendirilmiş ileti", "iletilen mesaj",
        "転送されたメッセージ", "転送メッセージ", "転送メール",
        "转发的邮件", "转发邮件", "轉寄郵件", "已转发邮件", "以下是转发的邮件", "轉寄的郵件", "轉發郵件",
        "전달된 메일", "전달된 메시지", "전달 메시지",
    }
)  # fmt: skip

# Lines that ticketing and notification systems put above the quoted message.
REPLY_ABOVE_PHRASES: tuple[str, ...] = (
    "reply above this line",
    "write above this line",
    "type your reply above",
    "über dieser zeile",
    "oberhalb dieser zeile",
    "au-dessus de cette ligne",
    "encima de esta línea",
    "sopra questa riga",
    "acima desta linha",
    "boven deze regel",
    "boven deze lijn",
)

# ---------------------------------------------------------------------------------- mobile/app footers


class Footer(IntEnum):
    """How the rest of a footer line ("Sent from my <rest>") must look for the line to be a footer."""

    MY = 1  # "Sent from my <device>": a short rest, or one naming a device or app
    SENT = 2  # "Sent with <app>": the rest must name a device or app
    GET = 3  # "Get <app> for <platform>": the rest must name an app and a platform
    EXCUSE = 4  # "Please excuse <typos>": the rest must be about typos or brevity


_FOOTER_LEADS: dict[Footer, tuple[str, ...]] = {
    Footer.MY: (
        "sent from my ", "sent wirelessly from my ", "sent from my mobile ", "sent with my ", "sent on my ",
        "gesendet von meinem ", "gesendet mit meinem ", "gesendet vom ",
        "envoyé de mon ", "envoyé depuis mon ", "envoyé à partir de mon ", "envoyé sans fil par mon ",
        "envoyé avec mon ", "envoyé de ma ", "envoyé depuis ma ",
        "enviado desde mi ", "enviado con mi ", "enviado de mi ",
        "inviato dal mio ", "inviato da mio ", "inviato con il mio ", "mandato dal mio ",
        "enviado do meu ", "enviado de meu ", "enviado a partir do meu ", "enviada do meu ",
        "verzonden vanaf mijn ", "verstuurd vanaf mijn ", "verzonden met mijn ", "verstuurd met mijn ",
        "verzonden vanuit mijn ", "verstuurd vanuit mijn ", "verzonden van mijn ", "verstuurd van mijn ",
        "skickat från min ", "skickat från mitt ", "skickades från min ", "skickades från mitt ",
        "sendt fra min ", "sendt fra mit ", "sendt fra mitt ", "sendt frå min ",
        "wysłane z mojego ", "wysłano z mojego ", "wysłane z mojej ", "wysłano z mojej ",
        "odesláno z mého ", "odesláno z mojí ", "posláno z mého ",
        "отправлено с моего ", "отправлено с моего ", "отправлено со своего ",
        "надіслано з мого ", "відправлено з мого ", "надіслано з мого ",
        "发自我的", "来自我的", "發自我的", "從我的", "从我的", "寄自我的",
        "나의 ",
    ),
    Footer.SENT: (
        "sent from ", "sent via ", "sent with ", "sent using ", "sent by ", "sent through ",
        "sent wirelessly from ", "sent wirelessly via ", "sent wirelessly by ",
        "gesendet von ", "gesendet mit ", "gesendet über ", "gesendet aus ", "gesendet via ",
        "envoyé de ", "envoyé depuis ", "envoyé à partir de ", "envoyé avec ", "envoyé par ", "envoyé via ",
        "envoyé sans fil par ",
        "enviado desde ", "enviado con ", "enviado a través de ", "enviado mediante ", "enviado vía ",
        "enviado via ",
        "inviato da ", "inviato con ", "inviato tramite ", "inviato dal ", "inviato dall'",
        "enviado do ", "enviado de ", "enviado pelo ", "enviado pela ", "enviado com ",
        "enviado a partir do ", "enviado a partir de ",
        "verzonden vanaf ", "verzonden vanuit ", "verzonden met ", "verzonden via ", "verstuurd vanaf ",
        "verstuurd vanuit ", "verstuurd met ", "verstuurd via ",
        "skickat från ", "skickades från ", "skickat med ", "skickat via ",
        "sendt fra ", "sendt med ", "sendt via ", "sendt frå ",
        "lähetetty ",
        "wysłane z ", "wysłano z ", "wysłane za pomocą ", "wysłano za pomocą ", "wysłane przez ",
        "odesláno z ", "odesláno ze ", "odesláno pomocí ", "posláno z ",
        "отправлено с ", "отправлено из ", "отправлено через ", "отправлено со ",
        "надіслано з ", "надіслано із ", "відправлено з ", "надіслано через ",
        "发自", "發自", "寄自",
    ),
    Footer.GET: (
        "get ", "download ", "get the ", "download the ",
        "holen sie sich ", "laden sie ", "hol dir ",
        "télécharger ", "téléchargez ", "obtenir ", "obtenez ",
        "obtener ", "obtén ", "descargar ", "descarga ", "descargue ",
        "scarica ", "ottieni ",
        "obter ", "obtenha ", "baixe ", "baixar ", "transferir ",
        "download ",
        "hämta ", "skaffa ", "ladda ner ",
        "hent ", "få ", "last ned ",
        "hanki ", "lataa ",
        "pobierz ",
        "stáhněte si ", "stáhnout ", "získat ", "získejte ",
        "скачайте ", "загрузите ", "получить ", "получите ", "скачать ",
        "завантажте ", "отримати ", "отримайте ", "завантажити ",
        "获取", "取得", "下载", "下載",
    ),
    Footer.EXCUSE: (
        "please excuse ", "excuse my ", "excuse the ", "excuse any ", "pardon my ", "pardon the ",
        "sorry for the ", "sorry for any ", "apologies for any ", "apologies for the ",
        "bitte entschuldigen sie ", "entschuldigen sie ", "bitte entschuldige ",
        "excusez ", "veuillez excuser ", "disculpa ", "disculpe ", "perdona ", "perdone ",
        "scusate ", "scusa ", "scusi ", "desculpe ", "desculpa ",
    ),
}  # fmt: skip

_FOOTER_TAILS: dict[Footer, tuple[str, ...]] = {
    Footer.SENT: (
        " gesendet", " versendet", " gesandt",  # "Von meinem iPhone gesendet"
        " gönderildi",  # "iPhone'umdan gönderildi"
        "から送信", "から送信されました", "より送信", "で送信",  # "iPhoneから送信"
        "에서 보냄", "에서 보냈습니다", "에서 전송",  # "iPhone에서 보냄"
        "发送", "發送", "傳送",  # "从我的 iPhone 发送"
    ),
    Footer.GET: (
        " herunterladen", " beziehen", " downloaden", " edinin", " indirin", "を入手", " 받기",
        " 다운로드",
    ),
}  # fmt: skip

FOOTER_LEADS: tuple[tuple[str, Footer], ...] = tuple(
    sorted(
        ((lead, kind) for kind, leads in _FOOTER_LEADS.items() for lead in leads),
        key=lambda item: -len(item[0]),
    )
)
# Leads by their first word (longest first), and the leads written without spaces (CJK).
FOOTER_LEADS_BY_WORD: dict[str, tuple[tuple[str, Footer], ...]] = {
    word: tuple(item for item in FOOTER_LEADS if item[0].split(" ", 1)[0] == word)
    for word in {lead.split(" ", 1)[0] for lead, _ in FOOTER_LEADS if " " in lead}
}
FOOTER_UNSPACED: tuple[tuple[str, Footer], ...] = tuple(item for item in FOOTER_LEADS if " " not in item[0])
FOOTER_UNSPACED_LEADS: tuple[str, ...] = tuple(lead for lead, _ in FOOTER_UNSPACED)
FOOTER_TAILS: tuple[tuple[str, Footer], ...] = tuple(
    sorted(
        ((tail, kind) for kind, tails in _FOOTER_TAILS.items() for tail in tails),
        key=lambda item: -len(item[0]),
    )
)
FOOTER_TAIL_SUFFIXES: tuple[str, ...] = tuple(tail for tail, _ in FOOTER_TAILS)
# German "Von meinem iPhone gesendet" and "Diese Nachricht wurde von meinem … gesendet" are possessive.
FOOTER_POSSESSIVE_STARTS: tuple[str, ...] = (
    "von meinem ",
    "diese nachricht wurde von meinem ",
    "diese e-mail wurde von meinem ",
    "나의 ",
)

# Words that name a device or a mail app, in the rest of a footer line (substrings, lower case).
DEVICE_WORDS: tuple[str, ...] = (
    "iphon", "ipad", "ipod", "android", "blackberry", "galaxy", "samsung", "huawei", "honor", "xiaomi",
    "redmi", "oppo", "oneplus", "pixel", "nokia", "motorola", "xperia", "sony", "htc", "lumia", "windows",
    "mobile", "móvil", "movil", "mobil", "mobiel", "handy", "phone", "smartphone", "telefon", "téléphone",
    "telephone", "teléfono", "telefono", "telefone", "telemóvel", "celular", "cellulare", "portable",
    "tablet", "appareil", "dispositivo", "device", "gerät", "enhet", "laite", "puhelin", "urządzeni",
    "zařízení", "устройств", "телефон", "смартфон", "планшет", "пристро", "terminal", "cihaz",
    "outlook", "mail", "yahoo", "proton", "icloud", "aol", "spark", "airmail", "bluemail", "mailbox",
    "acompli", "tapatalk", "superhuman", "tutanota", "tuta", "zoho", "gmx", "web.de", "t-online",
    "yandex", "яндекс", "почт", "пошт", "edison", "newton", "polymail", "typeapp", "aquamail", "k-9",
    "fairemail", "thunderbird", "watch", "kindle", "posta", "pošt", "poczt", "courrier", "correo",
    "correio", "e-post", "sähköposti", "posten",
    "メール", "携帯", "スマートフォン", "スマホ", "手机", "手機", "邮箱", "郵箱", "郵件", "邮件", "휴대폰",
    "갤럭시", "아이폰", "메일", "스마트폰",
)  # fmt: skip
# Apps that "Get …"/"Download …" footers advertise, and the platforms they name.
APP_WORDS: tuple[str, ...] = (
    "outlook", "bluemail", "spark", "yahoo", "gmail", "aquamail", "edison", "proton", "airmail", "aol",
    "mail.ru", "yandex", "яндекс", "newton", "myMail".lower(), "zoho", "gmx", "web.de",
)  # fmt: skip
PLATFORM_WORDS: tuple[str, ...] = ("ios", "android", "iphone", "ipad", "windows", "mac")
EXCUSE_WORDS: tuple[str, ...] = (
    "typo", "brevity", "brief", "spelling", "autocorrect", "tippfehler", "kürze", "rechtschreib",
    "faute", "frappe", "brièveté", "errata", "errores", "brevedad", "errori", "brevità", "erros",
    "brevidade",
)  # fmt: skip
MAX_FOOTER_WORDS = 10
MAX_FOOTER_REST_CHARS = 70
MAX_SHORT_FOOTER_WORDS = 4
