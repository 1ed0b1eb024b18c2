"""The embedded default study's data: synthetic arithmetic word problems in nine languages.

Why synthetic: the laptop study needs a task a ~1M-parameter model can learn in minutes on a CPU
and a translation that is exact by construction, so that any difference between languages is the
model's, not the translator's. Each problem is a *spec* (template, name, object, numbers); the
built-in template translator renders the same spec in every language, which makes the data
parallel item for item. Worked solutions are language-independent equations (``3 + 5 = 8``).

Russian numeral agreement is simplified (genitive plural after every number).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh", "ja", "th", "sw")

# Per-language vocabulary. Names: (nominative, genitive) where a language needs both.
NAMES: dict[str, list[tuple[str, str]]] = {
    "en": [(n, n) for n in ("Tom", "Anna", "Sam", "Lucy", "Ben", "Mia")],
    "de": [(n, n) for n in ("Lukas", "Lena", "Jonas", "Marie", "Paul", "Emma")],
    "fr": [(n, n) for n in ("Louis", "Chloé", "Hugo", "Léa", "Jules", "Manon")],
    "es": [(n, n) for n in ("Carlos", "Lucía", "Pablo", "Sofía", "Diego", "Elena")],
    "ru": [("Иван", "Ивана"), ("Анна", "Анны"), ("Олег", "Олега"), ("Мария", "Марии"),
           ("Пётр", "Петра"), ("Елена", "Елены")],
    "zh": [(n, n) for n in ("小明", "小红", "小刚", "小丽", "小华", "小芳")],
    "ja": [(n, n) for n in ("太郎", "花子", "健太", "さくら", "翔太", "美咲")],
    "th": [(n, n) for n in ("สมชาย", "สมหญิง", "มานะ", "มานี", "ปิติ", "ชูใจ")],
    "sw": [(n, n) for n in ("Juma", "Amina", "Baraka", "Neema", "Hamisi", "Zawadi")],
}

# Objects: (noun as used after a number, extra) where extra is a counter / measure word / gender.
OBJECTS: dict[str, list[tuple[str, str]]] = {
    "en": [("apples", ""), ("books", ""), ("pencils", ""), ("cookies", ""), ("balls", ""), ("flowers", "")],
    "de": [("Äpfel", ""), ("Bücher", ""), ("Stifte", ""), ("Kekse", ""), ("Bälle", ""), ("Blumen", "")],
    "fr": [("pommes", ""), ("livres", ""), ("crayons", ""), ("biscuits", ""), ("balles", ""), ("fleurs", "")],
    "es": [("manzanas", "f"), ("libros", "m"), ("lápices", "m"), ("galletas", "f"), ("pelotas", "f"),
           ("flores", "f")],
    "ru": [("яблок", ""), ("книг", ""), ("карандашей", ""), ("печений", ""), ("мячей", ""), ("цветов", "")],
    "zh": [("苹果", "个"), ("书", "本"), ("铅笔", "支"), ("饼干", "块"), ("球", "个"), ("花", "朵")],
    "ja": [("りんご", "個"), ("本", "冊"), ("鉛筆", "本"), ("クッキー", "枚"), ("ボール", "個"), ("花", "本")],
    "th": [("แอปเปิ้ล", "ผล"), ("หนังสือ", "เล่ม"), ("ดินสอ", "แท่ง"), ("คุกกี้", "ชิ้น"), ("ลูกบอล", "ลูก"),
           ("ดอกไม้", "ดอก")],
    "sw": [("matufaha", ""), ("vitabu", ""), ("penseli", ""), ("biskuti", ""), ("mipira", ""), ("maua", "")],
}

# Templates: {N} name, {G} name (genitive), {O} object, {C} counter, {Q} "how many" word, {a}{b}{c} numbers.
TEMPLATES: dict[str, dict[str, str]] = {
    "add": {
        "en": "{N} has {a} {O}. {N} buys {b} more {O}. How many {O} does {N} have now?",
        "de": "{N} hat {a} {O}. {N} kauft {b} weitere {O}. Wie viele {O} hat {N} jetzt?",
        "fr": "{N} a {a} {O}. {N} achète {b} {O} de plus. Combien de {O} a {N} maintenant ?",
        "es": "{N} tiene {a} {O}. {N} compra {b} {O} más. ¿{Q} {O} tiene {N} ahora?",
        "ru": "У {G} есть {a} {O}. {N} покупает ещё {b} {O}. Сколько {O} теперь у {G}?",
        "zh": "{N}有{a}{C}{O}。{N}又买了{b}{C}{O}。{N}现在有多少{C}{O}？",
        "ja": "{N}は{O}を{a}{C}持っています。{N}は{O}をさらに{b}{C}買いました。{N}は今{O}を何{C}持っていますか？",
        "th": "{N}มี{O} {a} {C} {N}ซื้อ{O}เพิ่มอีก {b} {C} ตอนนี้{N}มี{O}กี่{C}",
        "sw": "{N} ana {O} {a}. {N} ananunua {O} {b} zaidi. {N} ana {O} ngapi sasa?",
    },
    "sub": {
        "en": "{N} has {a} {O}. {N} gives {b} {O} to a friend. How many {O} does {N} have left?",
        "de": "{N} hat {a} {O}. {N} gibt einem Freund {b} {O}. Wie viele {O} hat {N} noch?",
        "fr": "{N} a {a} {O}. {N} donne {b} {O} à un ami. Combien de {O} reste-t-il à {N} ?",
        "es": "{N} tiene {a} {O}. {N} le da {b} {O} a un amigo. ¿{Q} {O} le quedan a {N}?",
        "ru": "У {G} есть {a} {O}. {N} отдаёт другу {b} {O}. Сколько {O} осталось у {G}?",
        "zh": "{N}有{a}{C}{O}。{N}送给朋友{b}{C}{O}。{N}还剩多少{C}{O}？",
        "ja": "{N}は{O}を{a}{C}持っています。{N}は友達に{O}を{b}{C}あげました。{N}に{O}は何{C}残っていますか？",
        "th": "{N}มี{O} {a} {C} {N}ให้{O}เพื่อน {b} {C} {N}เหลือ{O}กี่{C}",
        "sw": "{N} ana {O} {a}. {N} anampa rafiki {O} {b}. {N} amebaki na {O} ngapi?",
    },
    "mul": {
        "en": "{N} buys {a} boxes. Each box has {b} {O}. How many {O} does {N} buy in total?",
        "de": "{N} kauft {a} Schachteln. In jeder Schachtel sind {b} {O}. Wie viele {O} kauft {N} insgesamt?",
        "fr": "{N} achète {a} boîtes. Chaque boîte contient {b} {O}. Combien de {O} achète {N} au total ?",
        "es": "{N} compra {a} cajas. Cada caja tiene {b} {O}. ¿{Q} {O} compra {N} en total?",
        "ru": "{N} покупает {a} коробок. В каждой коробке {b} {O}. Сколько всего {O} покупает {N}?",
        "zh": "{N}买了{a}盒{O}。每盒有{b}{C}{O}。{N}一共买了多少{C}{O}？",
        "ja": "{N}は箱を{a}箱買いました。どの箱にも{O}が{b}{C}入っています。{N}は全部で{O}を何{C}買いましたか？",
        "th": "{N}ซื้อกล่อง {a} กล่อง แต่ละกล่องมี{O} {b} {C} {N}ซื้อ{O}ทั้งหมดกี่{C}",
        "sw": "{N} ananunua masanduku {a}. Kila sanduku lina {O} {b}. {N} ananunua {O} ngapi kwa jumla?",
    },
    "addsub": {
        "en": "{N} has {a} {O}. {N} buys {b} more {O} and then gives {c} {O} to a friend. "
              "How many {O} does {N} have now?",
        "de": "{N} hat {a} {O}. {N} kauft {b} weitere {O} und gibt dann einem Freund {c} {O}. "
              "Wie viele {O} hat {N} jetzt?",
        "fr": "{N} a {a} {O}. {N} achète {b} {O} de plus, puis donne {c} {O} à un ami. "
              "Combien de {O} a {N} maintenant ?",
        "es": "{N} tiene {a} {O}. {N} compra {b} {O} más y luego le da {c} {O} a un amigo. "
              "¿{Q} {O} tiene {N} ahora?",
        "ru": "У {G} есть {a} {O}. {N} покупает ещё {b} {O}, а потом отдаёт другу {c} {O}. "
              "Сколько {O} теперь у {G}?",
        "zh": "{N}有{a}{C}{O}。{N}又买了{b}{C}{O}，然后送给朋友{c}{C}{O}。{N}现在有多少{C}{O}？",
        "ja": "{N}は{O}を{a}{C}持っています。{N}は{O}をさらに{b}{C}買い、友達に{c}{C}あげました。"
              "{N}は今{O}を何{C}持っていますか？",
        "th": "{N}มี{O} {a} {C} {N}ซื้อเพิ่มอีก {b} {C} แล้วให้เพื่อน {c} {C} ตอนนี้{N}มี{O}กี่{C}",
        "sw": "{N} ana {O} {a}. {N} ananunua {O} {b} zaidi, kisha anampa rafiki {O} {c}. "
              "{N} ana {O} ngapi sasa?",
    },
}


def solve(spec: dict[str, Any]) -> tuple[str, int]:
    """The language-independent worked equation and the final answer of a spec."""
    t, nums = spec["t"], spec["nums"]
    if t == "add":
        return f"{nums[0]} + {nums[1]} = {nums[0] + nums[1]}", nums[0] + nums[1]
    if t == "sub":
        return f"{nums[0]} - {nums[1]} = {nums[0] - nums[1]}", nums[0] - nums[1]
    if t == "mul":
        return f"{nums[0]} * {nums[1]} = {nums[0] * nums[1]}", nums[0] * nums[1]
    if t == "addsub":
        r = nums[0] + nums[1] - nums[2]
        return f"{nums[0]} + {nums[1]} - {nums[2]} = {r}", r
    raise ValueError(f"unknown synthetic template {t!r}; known: {sorted(TEMPLATES)}")


def render(spec: dict[str, Any], lang: str) -> dict[str, str]:
    """Render one spec in ``lang``: the template translator (exact by construction)."""
    if lang not in NAMES:
        raise ValueError(f"the template translator has no templates for language {lang!r}; "
                         f"available: {', '.join(LANGUAGES)}")
    name, gen = NAMES[lang][spec["name"]]
    noun, extra = OBJECTS[lang][spec["obj"]]
    nums = dict(zip("abc", spec["nums"]))
    how_many = ("Cuántas" if extra == "f" else "Cuántos") if lang == "es" else ""
    question = TEMPLATES[spec["t"]][lang].format(N=name, G=gen, O=noun, C=extra, Q=how_many, **nums)
    solution, _ = solve(spec)
    return {"question": question, "solution": solution}


def _draw(rng: random.Random, template: str, lo: int, hi: int, max_factor: int) -> list[int]:
    if template == "add":
        return [rng.randint(lo, hi), rng.randint(lo, hi)]
    if template == "sub":
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return [max(a, b), min(a, b)]
    if template == "mul":
        return [rng.randint(2, max_factor), rng.randint(2, max_factor)]
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    return [a, b, rng.randint(lo, min(hi, a + b))]


def spec_id(spec: dict[str, Any]) -> str:
    """A stable id: the same spec always gets the same id, in every run and language."""
    key = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return "syn-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def generate(n: int, seed: int, min_number: int, max_number: int, max_factor: int,
             templates: list[str], exclude: set[str] = frozenset()) -> Iterator[dict[str, Any]]:
    """Yield ``n`` distinct English items (with their spec), skipping ids in ``exclude``."""
    unknown = sorted(set(templates) - set(TEMPLATES))
    if unknown:
        raise ValueError(f"source.synthetic.templates: unknown {unknown}; known: {sorted(TEMPLATES)}")
    rng = random.Random(seed)
    seen = set(exclude)
    made, tries = 0, 0
    while made < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"source.synthetic: cannot draw {n} distinct problems from numbers "
                             f"{min_number}..{max_number}; widen the range or ask for fewer")
        t = templates[rng.randrange(len(templates))]
        spec = {"t": t, "name": rng.randrange(6), "obj": rng.randrange(6),
                "nums": _draw(rng, t, min_number, max_number, max_factor)}
        sid = spec_id(spec)
        if sid in seen:
            continue
        seen.add(sid)
        made += 1
        en = render(spec, "en")
        yield {"id": sid, "question": en["question"], "answer": str(solve(spec)[1]),
               "solution": en["solution"], "spec": spec}


def generate_split(settings: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """The English rows of one split. Test items are drawn first and excluded from train, so the
    benchmark never contains a training item (items, not operand combinations, are held out)."""
    s = settings["synthetic"] if "synthetic" in settings else settings
    args = dict(seed=s["seed"], min_number=s["min_number"], max_number=s["max_number"],
                max_factor=s["max_factor"], templates=list(s["templates"]))
    test = list(generate(s["n_test"], **args))
    if split == "test":
        return test
    if split == "train":
        args["seed"] = s["seed"] + 1
        return list(generate(s["n_train"], exclude={r["id"] for r in test}, **args))
    raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
