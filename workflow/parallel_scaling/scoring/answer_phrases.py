"""Multilingual answer phrases, as data: how models in the study's languages state a final answer,
commit to none, or hedge between two.

Legitimately ours: no library knows the native "the answer is" phrases of Swahili, Thai or
Telugu, and these tables decide which number of a response is its answer. Extend them here (a
language, a phrase); :mod:`parallel_scaling.scoring.answers` compiles them.
"""

from __future__ import annotations

#: Native "the answer is" phrases, as data: (language, phrase). Matching is case-insensitive and
#: tolerant of trailing ``:``/``：``/dashes/``**``. The last occurrence in a response wins.
ANSWER_PHRASES: tuple[tuple[str, str], ...] = (
    ("en", "the final answer is"),
    ("en", "the answer is"),
    ("en", "final answer:"),
    ("en", "answer:"),
    ("de", "die antwort ist"),
    ("de", "die antwort lautet"),
    ("de", "antwort:"),
    ("fr", "la réponse finale est"),
    ("fr", "réponse finale :"),
    ("fr", "réponse finale:"),
    ("fr", "la réponse est"),
    ("fr", "réponse :"),
    ("fr", "réponse:"),
    ("es", "la respuesta final es"),
    ("es", "respuesta final:"),
    ("es", "la respuesta es"),
    ("es", "respuesta:"),
    ("it", "la risposta è"),
    ("pt", "a resposta é"),
    ("nl", "het antwoord is"),
    ("ru", "ответ:"),
    ("ru", "ответ —"),
    ("ru", "ответ -"),
    ("ru", "ответ –"),
    ("ru", "ответ равен"),
    ("ru", "ответ будет"),
    ("zh", "最终答案是"),
    ("zh", "最终答案："),
    ("zh", "最终答案:"),
    ("zh", "答案是"),
    ("zh", "答案为"),
    ("zh", "答案："),
    ("zh", "答案:"),
    ("ja", "答えは"),
    ("ja", "答え："),
    ("ja", "答え:"),
    ("ja", "解答は"),
    ("ko", "정답은"),
    ("ko", "답은"),
    ("th", "คำตอบคือ"),
    ("th", "คำตอบสุดท้าย"),
    ("th", "คำตอบ:"),
    ("sw", "jibu ni"),
    ("sw", "jibu la mwisho"),
    ("sw", "jibu:"),
    ("bn", "উত্তর হল"),
    ("bn", "উত্তর হলো"),
    ("bn", "উত্তর হচ্ছে"),
    ("bn", "উত্তর:"),
    ("te", "సమాధానం"),
    ("te", "జవాబు"),
    ("hi", "उत्तर है"),
    ("hi", "उत्तर:"),
    ("ar", "الإجابة هي"),
    ("vi", "đáp án là"),
    ("vi", "câu trả lời là"),
    ("id", "jawabannya adalah"),
    ("id", "jawaban:"),
    ("tr", "cevap:"),
    ("tr", "yanıt:"),
)

#: Languages whose answer sentence ends in its predicate ("30日間で$12かかります", "1日に18回です"):
#: of several numbers, the one the sentence commits to stands last, next to the predicate.
VERB_FINAL_LANGS: frozenset[str] = frozenset({"ja", "ko"})

#: Chain-of-thought headers that contain an answer word but precede the reasoning (the MGSM
#: exemplar prefixes our prompts use). They are blanked before phrase search so that
#: "Step-by-Step Answer: Roger started with 5 balls" never yields 5.
COT_HEADERS: tuple[str, ...] = (
    "step-by-step answer",
    "schritt-für-schritt-antwort",
    "réponse étape par étape",
    "respuesta paso a paso",
    "пошаговое решение",
    "逐步解答",
    "ステップごとの答え",
    "คำตอบทีละขั้นตอน",
    "jibu la hatua kwa hatua",
    "ধাপে ধাপে উত্তর",
    "దశలవారీగా సమాధానం",
)

#: Statements that the question cannot be answered, as data: (language, regular expression), matched
#: case-insensitively in the sentence after an answer marker, before its first number. An answer
#: line saying one of these commits to no value, so nothing is extracted (falling back to the last
#: number of the reasoning would grade a refusal as if it were an answer).
NO_ANSWER_PATTERNS: tuple[tuple[str, str], ...] = (
    ("en", r"(?:not possible|impossible|unable|no way) to (?:determine|calculate|compute|know|say|tell|find|answer)"),
    ("en", r"can(?:not|['’]t| not) (?:be )?(?:determined?|calculated?|computed?|known|answered|found|sa(?:y|id)|tell)"),
    ("en", r"(?:not enough|insufficient|missing) (?:information|data)"),
    ("en", r"\bundeterminable\b|\bnot determinable\b|\bundetermined\b"),
    ("de", r"nicht (?:eindeutig )?(?:bestimmbar|bestimmen|bestimmt werden|berechnet werden|ermittelt werden|sagen)"),
    ("de", r"(?:nicht möglich|unmöglich),? .{0,40}?(?:bestimmen|berechnen|ermitteln|sagen)"),
    ("de", r"(?:nicht genügend|nicht genug|unzureichende|fehlende) (?:informationen|angaben|daten)"),
    ("fr", r"(?:impossible|pas possible) de (?:déterminer|calculer|savoir|dire|répondre|trouver)"),
    ("fr", r"ne (?:peut|peuvent|pouvons|peux) pas (?:être )?(?:déterminer|déterminée?s?|calculer|calculée?s?|savoir)"),
    ("fr", r"(?:pas assez|manque) d'informations?|informations? insuffisantes?|données insuffisantes"),
    ("es", r"no (?:es posible|se puede|podemos|puedo) (?:determinar|calcular|saber|decir)"),
    ("es", r"imposible (?:de )?(?:determinar|calcular|saber|decir)|no (?:se )?puede ser determinad[oa]"),
    ("es", r"(?:información|datos) insuficientes?|no hay (?:suficiente información|suficientes datos)"),
    ("it", r"non (?:è possibile|si può|possiamo) (?:determinare|calcolare|sapere|dire)|informazioni insufficienti"),
    ("pt", r"não (?:é possível|se pode|podemos) (?:determinar|calcular|saber|dizer)|informações insuficientes"),
    ("nl", r"niet (?:te )?(?:bepalen|berekenen)|onvoldoende informatie"),
    ("ru", r"(?:невозможно|нельзя|не можем|не могу|не удаётся|не удается) (?:однозначно |точно )?"
           r"(?:определить|вычислить|сказать|найти|ответить|установить)"),
    ("ru", r"недостаточно (?:данных|информации|условий)|не может быть (?:определ|вычисл|найден)"),
    ("zh", r"无法(?:确定|判断|计算|得出|求出|回答|得知)|不能(?:确定|计算|求出|得出)|条件不足|信息不足|缺少(?:信息|条件|数据)"),
    ("ja", r"(?:決定|特定|判断|計算|確定|算出|判定)(?:することは|は)?できません|(?:決定|特定|判断|計算|確定)できない"),
    ("ja", r"(?:求め|決め)られ(?:ません|ない)|(?:情報|条件|データ)が(?:不足|足りません|足りない)"),
    ("ko", r"(?:결정|계산|확정|판단|구)할 수 없|알 수 없|정보가 (?:부족|충분하지)"),
    ("th", r"ไม่สามารถ(?:ระบุ|หา|คำนวณ|ตัดสิน|บอก|ทราบ|ตอบ)|ข้อมูลไม่(?:เพียงพอ|พอ|ครบ)"),
    ("sw", r"haiwezekani (?:kuamua|kujua|kuhesabu|kupata|kusema)|haiwezi kuamuliwa|hatuwezi (?:kuamua|kujua|kuhesabu)"),
    ("sw", r"taarifa (?:haitoshi|hazitoshi)|habari (?:haitoshi|hazitoshi)"),
    ("bn", r"নির্ধারণ করা (?:সম্ভব নয়|যায় না)|তথ্য (?:অপর্যাপ্ত|যথেষ্ট নয়)"),
    ("te", r"నిర్ణయించలేము|నిర్ధారించలేము|సమాచారం సరిపోదు"),
    ("hi", r"निर्धारित नहीं (?:किया जा सकता|कर सकते)|पर्याप्त जानकारी नहीं"),
    ("ar", r"لا يمكن (?:تحديد|حساب|معرفة)|معلومات غير كافية"),
    ("vi", r"không thể (?:xác định|tính|biết)|không đủ thông tin"),
    ("id", r"tidak (?:dapat|bisa) (?:ditentukan|dihitung|menentukan)|informasi tidak (?:cukup|memadai)"),
    ("tr", r"belirlenemez|hesaplanamaz|yeterli bilgi (?:yok|bulunmuyor)"),
)

#: Words for "or", as data: (language, regular expression). An answer sentence offering two
#: different numbers joined by one of them ("5 (if ...) or 6 (if ...)") is a hedge, not an answer.
#: Only used for ``number`` answers: a LaTeX answer such as ``x = 1 \text{ or } x = 2`` is legitimate.
OR_WORDS: tuple[tuple[str, str], ...] = (
    ("en", r"\bor\b"),
    ("de", r"\boder\b"),
    ("fr", r"\bou\b"),
    ("pt", r"\bou\b"),
    ("es", r"(?<=\s)[ou](?=\s)"),
    ("it", r"(?<=\s)o(?=\s)|\boppure\b"),
    ("ru", r"\bили\b|\bлибо\b"),
    ("zh", r"或者?|还是"),
    ("ja", r"または|もしくは|あるいは"),
    ("ko", r"또는|아니면|혹은"),
    ("th", r"หรือ"),
    ("sw", r"\bau\b"),
    ("bn", r"অথবা|(?<=\s)বা(?=\s)"),
    ("te", r"లేదా"),
    ("hi", r"अथवा|(?<=\s)या(?=\s)"),
    ("ar", r"(?<=\s)أو(?=\s)"),
    ("vi", r"\bhoặc\b"),
    ("id", r"\batau\b"),
    ("tr", r"\bveya\b|\bya da\b"),
)
