"""Reply headers, header blocks, separators and footers as mail clients write them, in 19 languages.

Each language row holds what a colleague might answer and how Gmail, Apple Mail, Thunderbird and
Outlook (plain-text header block, "-----Original Message-----", mobile footers) localise their reply
furniture. Every combination must trim to exactly the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nudger.inbound.trim import trim, trim_reply

ADDR = "reply+k3v5w7ab2cde@nudger.example"
QUOTED = (
    "> What did you learn from a mistake this week?\n>\n> Reply to this email; only your circle sees it.\n"
)
HISTORY = "What did you learn from a mistake this week?\n\nReply to this email; only your circle sees it.\n"


@dataclass(frozen=True)
class Lang:
    code: str
    answer: str
    gmail: str
    apple: str
    thunderbird: str
    block: str  # Outlook From/Sent/To/Subject
    original: str  # "-----Original Message-----"
    iphone: str  # the iOS footer
    outlook_app: str  # the Outlook mobile footer


LANGS = [
    Lang(
        "en",
        "I merged before the review finished.\nNext time I will wait for the second approval.",
        f"On Mon, 10 Mar 2025 at 08:00, Nudger <{ADDR}> wrote:",
        f"On 10 Mar 2025, at 08:00, Nudger <{ADDR}> wrote:",
        "On 10/03/2025 08:00, Nudger wrote:",
        f"From: Nudger <{ADDR}>\nSent: Monday, March 10, 2025 8:00 AM\nTo: Anna Schmidt <anna@acme.example>\n"
        "Subject: What did you learn this week?",
        "-----Original Message-----",
        "Sent from my iPhone",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "de",
        "Ich habe vor dem Review gemergt.\nBeim nächsten Mal warte ich auf die zweite Freigabe.",
        f"Am Mo., 10. März 2025 um 08:00 Uhr schrieb Nudger <{ADDR}>:",
        f"Am 10.03.2025 um 08:00 schrieb Nudger <{ADDR}>:",
        "Am 10.03.25 um 08:00 schrieb Nudger:",
        f"Von: Nudger <{ADDR}>\nGesendet: Montag, 10. März 2025 08:00\nAn: Anna Schmidt <anna@acme.example>\n"
        "Betreff: Was hast du diese Woche gelernt?",
        "-----Ursprüngliche Nachricht-----",
        "Von meinem iPhone gesendet",
        "Outlook für iOS<https://aka.ms/o0ukef> herunterladen",
    ),
    Lang(
        "fr",
        "J'ai fusionné avant la fin de la revue.\nLa prochaine fois, j'attendrai la deuxième validation.",
        f"Le lun. 10 mars 2025 à 08:00, Nudger <{ADDR}> a écrit :",
        f"Le 10 mars 2025 à 08:00, Nudger <{ADDR}> a écrit :",
        "Le 10/03/2025 à 08:00, Nudger a écrit :",
        f"De : Nudger <{ADDR}>\nEnvoyé : lundi 10 mars 2025 08:00\nÀ : Anna Schmidt <anna@acme.example>\n"
        "Objet : Qu'avez-vous appris cette semaine ?",
        "-----Message d'origine-----",
        "Envoyé de mon iPhone",
        "Télécharger Outlook pour iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "es",
        "Fusioné antes de que terminara la revisión.\nLa próxima vez esperaré la segunda aprobación.",
        f"El lun, 10 mar 2025 a las 8:00, Nudger (<{ADDR}>) escribió:",
        f"El 10 mar 2025, a las 8:00, Nudger <{ADDR}> escribió:",
        "El 10/3/25 a las 8:00, Nudger escribió:",
        f"De: Nudger <{ADDR}>\nEnviado el: lunes, 10 de marzo de 2025 8:00\nPara: Anna Schmidt\n"
        "Asunto: ¿Qué aprendiste esta semana?",
        "-----Mensaje original-----",
        "Enviado desde mi iPhone",
        "Obtener Outlook para iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "it",
        "Ho fatto il merge prima della fine della revisione.\n"
        "La prossima volta aspetterò la seconda approvazione.",
        f"Il giorno lun 10 mar 2025 alle ore 08:00 Nudger <{ADDR}> ha scritto:",
        f"Il giorno 10 mar 2025, alle ore 08:00, Nudger <{ADDR}> ha scritto:",
        "Il 10/03/25 08:00, Nudger ha scritto:",
        f"Da: Nudger <{ADDR}>\nInviato: lunedì 10 marzo 2025 08:00\nA: Anna Schmidt <anna@acme.example>\n"
        "Oggetto: Che cosa hai imparato questa settimana?",
        "-----Messaggio originale-----",
        "Inviato da iPhone",
        "Scarica Outlook per iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "pt",
        "Fiz o merge antes de a revisão terminar.\nDa próxima vez vou esperar pela segunda aprovação.",
        f"Em seg., 10 de mar. de 2025 às 08:00, Nudger <{ADDR}> escreveu:",
        f"Em 10 de mar. de 2025, à(s) 08:00, Nudger <{ADDR}> escreveu:",
        "Em 10/03/2025 08:00, Nudger escreveu:",
        f"De: Nudger <{ADDR}>\nEnviado: segunda-feira, 10 de março de 2025 08:00\nPara: Anna Schmidt\n"
        "Assunto: O que você aprendeu esta semana?",
        "-----Mensagem original-----",
        "Enviado do meu iPhone",
        "Obter o Outlook para iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "nl",
        "Ik heb gemerged voordat de review klaar was.\nVolgende keer wacht ik op de tweede goedkeuring.",
        f"Op ma 10 mrt 2025 om 08:00 schreef Nudger <{ADDR}>:",
        f"Op 10 mrt 2025 om 08:00 heeft Nudger <{ADDR}> het volgende geschreven:",
        "Op 10-03-2025 om 08:00 schreef Nudger:",
        f"Van: Nudger <{ADDR}>\nVerzonden: maandag 10 maart 2025 08:00\n"
        "Aan: Anna Schmidt <anna@acme.example>\n"
        "Onderwerp: Wat heb je deze week geleerd?",
        "-----Oorspronkelijk bericht-----",
        "Verstuurd vanaf mijn iPhone",
        "Outlook voor iOS<https://aka.ms/o0ukef> downloaden",
    ),
    Lang(
        "sv",
        "Jag mergade innan granskningen var klar.\nNästa gång väntar jag på det andra godkännandet.",
        f"Den mån 10 mars 2025 kl 08:00 skrev Nudger <{ADDR}>:",
        f"10 mars 2025 kl. 08:00 skrev Nudger <{ADDR}>:",
        "Den 2025-03-10 kl. 08:00, skrev Nudger:",
        f"Från: Nudger <{ADDR}>\nSkickat: den 10 mars 2025 08:00\nTill: Anna Schmidt <anna@acme.example>\n"
        "Ämne: Vad lärde du dig den här veckan?",
        "-----Ursprungligt meddelande-----",
        "Skickat från min iPhone",
        "Hämta Outlook för iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "da",
        "Jeg mergede før reviewet var færdigt.\nNæste gang venter jeg på den anden godkendelse.",
        f"Den man. 10. mar. 2025 kl. 08.00 skrev Nudger <{ADDR}>:",
        f"Den 10. mar. 2025 kl. 08.00 skrev Nudger <{ADDR}>:",
        "Den 10.03.2025 kl. 08.00 skrev Nudger:",
        f"Fra: Nudger <{ADDR}>\nSendt: 10. marts 2025 08:00\nTil: Anna Schmidt <anna@acme.example>\n"
        "Emne: Hvad lærte du i denne uge?",
        "-----Oprindelig meddelelse-----",
        "Sendt fra min iPhone",
        "Hent Outlook til iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "no",
        "Jeg merget før gjennomgangen var ferdig.\nNeste gang venter jeg på den andre godkjenningen.",
        f"man. 10. mar. 2025 kl. 08:00 skrev Nudger <{ADDR}>:",
        f"10. mar. 2025 kl. 08:00 skrev Nudger <{ADDR}>:",
        "Den 10.03.2025 08:00, skrev Nudger:",
        f"Fra: Nudger <{ADDR}>\nSendt: mandag 10. mars 2025 08:00\nTil: Anna Schmidt <anna@acme.example>\n"
        "Emne: Hva lærte du denne uken?",
        "-----Opprinnelig melding-----",
        "Sendt fra min iPhone",
        "Få Outlook for iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "fi",
        "Yhdistin muutoksen ennen kuin katselmointi oli valmis.\nEnsi kerralla odotan toista hyväksyntää.",
        f"ma 10.3.2025 klo 8.00 Nudger ({ADDR}) kirjoitti:",
        f"Nudger <{ADDR}> kirjoitti 10.3.2025 kello 8.00:",
        "Nudger kirjoitti 10.3.2025 klo 8.00:",
        f"Lähettäjä: Nudger <{ADDR}>\nLähetetty: maanantai 10. maaliskuuta 2025 8.00\n"
        "Vastaanottaja: Anna Schmidt <anna@acme.example>\nAihe: Mitä opit tällä viikolla?",
        "-----Alkuperäinen viesti-----",
        "Lähetetty iPhonesta",
        "Hanki Outlook for iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "pl",
        "Zrobiłem merge przed końcem przeglądu.\nNastępnym razem poczekam na drugą akceptację.",
        f"pon., 10 mar 2025 o 08:00 Nudger <{ADDR}> napisał(a):",
        f"Wiadomość napisana przez Nudger <{ADDR}> w dniu 10.03.2025, o godz. 08:00:",
        "W dniu 10.03.2025 o 08:00, Nudger pisze:",
        f"Od: Nudger <{ADDR}>\nWysłano: poniedziałek, 10 marca 2025 08:00\n"
        "Do: Anna Schmidt <anna@acme.example>\n"
        "Temat: Czego nauczyłeś się w tym tygodniu?",
        "-----Oryginalna wiadomość-----",
        "Wysłane z iPhone'a",
        "Pobierz aplikację Outlook dla systemu iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "cs",
        "Sloučil jsem změnu před koncem revize.\nPříště počkám na druhé schválení.",
        f"po 10. 3. 2025 v 8:00 odesílatel Nudger <{ADDR}> napsal:",
        f"10. 3. 2025 v 8:00, Nudger <{ADDR}>:",
        "Dne 10. 03. 25 v 8:00 Nudger napsal(a):",
        f"Od: Nudger <{ADDR}>\nOdesláno: pondělí 10. března 2025 8:00\n"
        "Komu: Anna Schmidt <anna@acme.example>\n"
        "Předmět: Co jste se tento týden naučili?",
        "-----Původní zpráva-----",
        "Odesláno z iPhonu",
        "Stáhněte si Outlook pro iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "ru",
        "Я влил изменения до конца ревью.\nВ следующий раз дождусь второго одобрения.",
        f"пн, 10 мар. 2025 г. в 08:00, Nudger <{ADDR}>:",
        f"10 марта 2025 г., в 8:00, Nudger <{ADDR}> написал(а):",
        "10.03.2025 08:00, Nudger пишет:",
        f"От: Nudger <{ADDR}>\nОтправлено: 10 марта 2025 г. 8:00\nКому: Anna Schmidt <anna@acme.example>\n"
        "Тема: Чему вы научились на этой неделе?",
        "-----Исходное сообщение-----",
        "Отправлено с iPhone",
        "Скачайте Outlook для iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "uk",
        "Я злив зміни до завершення рев'ю.\nНаступного разу чекатиму на друге схвалення.",
        f"пн, 10 бер. 2025 р. о 08:00 Nudger <{ADDR}> пише:",
        f"10 бер. 2025 р. о 08:00 Nudger <{ADDR}> написав(-ла):",
        "10.03.25 08:00, Nudger пише:",
        f"Від: Nudger <{ADDR}>\nНадіслано: 10 березня 2025 р. 8:00\nКому: Anna Schmidt <anna@acme.example>\n"
        "Тема: Чого ви навчилися цього тижня?",
        "-----Оригінальне повідомлення-----",
        "Надіслано з iPhone",
        "Завантажте Outlook для iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "tr",
        "İnceleme bitmeden birleştirdim.\nBir dahaki sefere ikinci onayı bekleyeceğim.",
        f"Nudger <{ADDR}>, 10 Mar 2025 Pzt, 08:00 tarihinde şunu yazdı:",
        f"10 Mar 2025 tarihinde 08:00 saatinde, Nudger <{ADDR}> şunu yazdı:",
        "10.03.2025 08:00 tarihinde Nudger yazdı:",
        f"Kimden: Nudger <{ADDR}>\nGönderildi: 10 Mart 2025 Pazartesi 08:00\nKime: Anna Schmidt\n"
        "Konu: Bu hafta ne öğrendiniz?",
        "-----Özgün İleti-----",
        "iPhone'umdan gönderildi",
        "iOS için Outlook'u edinin<https://aka.ms/o0ukef>",
    ),
    Lang(
        "ja",
        "レビューが終わる前にマージしてしまいました。\n次回は二人目の承認を待ちます。",
        f"2025年3月10日(月) 8:00 Nudger <{ADDR}>:",
        f"2025/03/10 8:00、Nudger <{ADDR}>のメール:",
        "2025/03/10 8:00, Nudger wrote:",
        f"差出人: Nudger <{ADDR}>\n送信日時: 2025年3月10日 8:00\n宛先: Anna Schmidt <anna@acme.example>\n"
        "件名: 今週学んだことは何ですか？",
        "-----元のメッセージ-----",
        "iPhoneから送信",
        "Outlook for iOS<https://aka.ms/o0ukef> を入手",
    ),
    Lang(
        "zh",
        "评审还没结束我就合并了。\n下次我会等第二个人批准。",
        f"Nudger <{ADDR}> 于2025年3月10日周一 08:00写道：",
        f"2025年3月10日 08:00，Nudger <{ADDR}> 写道：",
        "在 2025/3/10 8:00, Nudger 写道:",
        f"发件人: Nudger <{ADDR}>\n发送时间: 2025年3月10日 8:00\n收件人: Anna Schmidt <anna@acme.example>\n"
        "主题: 这周你学到了什么？",
        "-----原始邮件-----",
        "发自我的iPhone",
        "获取 Outlook for iOS<https://aka.ms/o0ukef>",
    ),
    Lang(
        "ko",
        "리뷰가 끝나기 전에 병합했습니다.\n다음에는 두 번째 승인을 기다리겠습니다.",
        f"2025년 3월 10일 (월) 오전 8:00, Nudger <{ADDR}>님이 작성:",
        f"2025. 3. 10. 오전 8:00, Nudger <{ADDR}> 작성:",
        "2025-03-10 오전 8:00에 Nudger 이(가) 쓴 글:",
        f"보낸 사람: Nudger <{ADDR}>\n보낸 날짜: 2025년 3월 10일 월요일 오전 8:00\n"
        "받는 사람: Anna Schmidt <anna@acme.example>\n제목: 이번 주에 무엇을 배웠나요?",
        "-----원본 메시지-----",
        "iPhone에서 보냄",
        "iOS용 Outlook<https://aka.ms/o0ukef> 받기",
    ),
]
IDS = [lang.code for lang in LANGS]


def expect_answer(text: str, lang: Lang) -> None:
    trimmed = trim(text)
    assert trimmed.visible == lang.answer
    assert "What did you learn" in trimmed.elided or "Reply to this email" in trimmed.elided


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_gmail_header_then_quote(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.gmail}\n\n{QUOTED}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_gmail_header_wrapped_before_the_address(lang: Lang) -> None:
    header = lang.gmail.replace(f" <{ADDR}>", f"\n<{ADDR}>").replace(f" ({ADDR})", f"\n({ADDR})")
    header = header.replace(f" (<{ADDR}>)", f"\n(<{ADDR}>)")
    expect_answer(f"{lang.answer}\n\n{header}\n\n{QUOTED}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_apple_mail_header_quote_and_footer(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.iphone}\n\n{lang.apple}\n\n{QUOTED}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_apple_mail_header_followed_by_unquoted_history(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.apple}\n\n{HISTORY}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_thunderbird_header_then_quote(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.thunderbird}\n{QUOTED}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_outlook_block_after_underscores(lang: Lang) -> None:
    rule = "_" * 32
    text = f"{lang.answer}\n\n{lang.outlook_app}\n\n{rule}\n{lang.block}\n\n{HISTORY}"
    expect_answer(text, lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_outlook_block_alone(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.block}\n\n{HISTORY}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_outlook_bold_block_converted_from_html(lang: Lang) -> None:
    bold = "\n".join(
        f"*{label.strip()}:*{value}"
        for label, _, value in (line.partition(":") for line in lang.block.split("\n"))
    )
    expect_answer(f"{lang.answer}\n\n{bold}\n\n{HISTORY}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_original_message_separator(lang: Lang) -> None:
    expect_answer(f"{lang.answer}\n\n{lang.original}\n{lang.block}\n\n{HISTORY}", lang)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_inline_answer_under_a_localised_header(lang: Lang) -> None:
    first, second = lang.answer.split("\n")
    text = (
        f"{lang.gmail}\n\n> What did you learn from a mistake this week?\n\n{first}\n\n"
        f"> What will you do differently?\n\n{second}\n\n{lang.iphone}\n"
    )
    trimmed = trim(text)
    assert trimmed.visible == f"{first}\n\n{second}"
    assert trimmed.elided.startswith(lang.gmail.split("\n")[0])


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
@pytest.mark.parametrize("footer", ["iphone", "outlook_app"])
def test_mobile_footers_alone_are_removed(lang: Lang, footer: str) -> None:
    line = getattr(lang, footer)
    trimmed = trim_reply(f"{lang.answer}\n\n{line}\n")
    assert trimmed.visible == lang.answer
    assert trimmed.elided == line


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_answers_alone_are_untouched(lang: Lang) -> None:
    assert trim(lang.answer).visible == lang.answer
    assert trim(lang.answer).elided == ""
