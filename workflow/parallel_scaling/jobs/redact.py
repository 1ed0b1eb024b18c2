"""What a secret looks like: one list for everything that writes files other people may read.

Why one module: two writers must keep secrets out, the per-job provenance records
(:mod:`parallel_scaling.jobs.provenance`: argv, settings, environment values) and the archive
(:mod:`parallel_scaling.archive.members`: which files are packed). When each kept its own list of
secret words the lists drifted apart (one knew ``credentials`` and ``passwd``, the other did not);
here there is one of each kind:

* secret **keys** -- names of options, settings, variables and files: :data:`SECRET_WORDS`, matched
  by *word* (split on non-letters and camelCase, adjacent words also joined: ``api-key`` ->
  ``apikey``) rather than by substring, so that ``--max-new-tokens``, ``--tokenizer`` or a
  checkpoint's ``tokenizer.json`` and ``special_tokens_map.json`` are kept: provenance and
  checkpoints need them;
* secret **values** -- the common token kinds (:data:`SECRET_VALUE_PATTERNS`: Hugging Face,
  GitHub, OpenAI-style ``sk-`` keys, AWS access key ids, Slack, Google API keys, private key
  blocks) and the password of a URL (``https://user:`` *password* ``@host``), found anywhere in text;
* secret **files** -- names that hold secrets by convention (``.env*``, ``.netrc``, ``*.pem``, SSH
  keys, Hugging Face ``stored_tokens``, ...): :data:`SECRET_FILE_NAMES` and its prefix and suffix
  lists, on top of any name with a secret word (``hf_token``, ``client_secret.json``).

Values are replaced by :data:`REDACTED`; files are left out by their users. Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "<redacted>"

#: A key is secret when one of its words is one of these.
SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "credential",
                          "credentials", "apikey"})
#: Hugging Face access tokens (``hf_`` + 34 alphanumerics); matched anywhere in a string. The
#: length floor keeps identifiers such as ``hf_transfer`` or ``hf_hub_download`` intact.
HF_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")
#: What each kind of token looks like (documented prefixes and lengths, with a floor that keeps
#: ordinary words and identifiers out); matched anywhere in a string.
SECRET_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "Hugging Face token": HF_TOKEN_PATTERN,
    "GitHub token": re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    "OpenAI-style API key": re.compile(r"(?<![A-Za-z0-9-])sk-(?:[A-Za-z]+-)?[A-Za-z0-9_-]{20,}"),
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    "Slack token": re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
#: ``scheme://user:`` *password* ``@host``: the password (group ``secret``) is a credential
URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)(?P<secret>[^/\s@]+)(?=@)")
#: File names (lower-cased) that hold secrets by convention, whatever their words.
SECRET_FILE_NAMES = frozenset({".netrc", ".pgpass", ".git-credentials", "stored_tokens", "credentials"})
SECRET_FILE_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
SECRET_FILE_PREFIXES = (".env", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa")


def key_words(key: str) -> list[str]:
    """Lower-cased words of a name, and each adjacent pair joined: ``--hfToken`` -> ``['hf',
    'token', 'hftoken']``, ``api-key`` -> ``['api', 'key', 'apikey']``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    return words + [a + b for a, b in zip(words, words[1:])]


def is_secret_key(key: str) -> bool:
    """True when an option, setting, variable or file name names a secret (``api_key``,
    ``--hf-token``, ``PASSWORD``, ``clientSecret``).

    Plurals and compounds such as ``max_new_tokens`` or ``tokenizer`` are *not* secrets: they are
    exactly the settings provenance must keep.
    """
    return any(word in SECRET_WORDS for word in key_words(key))


def is_secret_name(name: str) -> bool:
    """True when a file or directory name marks a secret: a conventional secret file, or a name
    with a secret word (``hf_token`` yes; ``tokenizer.json``, ``special_tokens_map.json`` no)."""
    lower = name.lower()
    return (lower in SECRET_FILE_NAMES or lower.endswith(SECRET_FILE_SUFFIXES)
            or lower.startswith(SECRET_FILE_PREFIXES) or is_secret_key(name))


def secret_kind(text: str) -> str | None:
    """What kind of secret value ``text`` holds (``"GitHub token"``, ``"password in a URL"``), or None."""
    for kind, pattern in SECRET_VALUE_PATTERNS.items():
        if pattern.search(text):
            return kind
    return "password in a URL" if URL_CREDENTIALS.search(text) else None


def contains_secret(text: str) -> bool:
    """True when ``text`` holds a secret value (a token of a known kind, a URL's password)."""
    return secret_kind(text) is not None


def find_secrets(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """``(dotted key, what)`` of every secret in a config-like value: a non-empty value under a
    secret-named key, or a string shaped like a token or holding a URL's password. The values
    themselves are never returned, so that a message naming them cannot print them."""
    found: list[tuple[str, str]] = []
    key = ".".join(path)
    if path and is_secret_key(path[-1]) and value not in (None, "", False, [], {}):
        return [(key, f"a value under a secret-named key ({path[-1]!r})")]
    if isinstance(value, dict):
        for k, v in value.items():
            found += find_secrets(v, (*path, str(k)))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found += find_secrets(v, (*path, str(i)))
    elif isinstance(value, str):
        kind = secret_kind(value)
        if kind:
            found.append((key, f"a {kind}"))
    return found


#: ``key: value`` / ``key=value`` pairs inside free text (JSON or ``a=1,b=2`` blobs in argv).
_EMBEDDED_PAIR = re.compile(
    r"""(?P<q>["']?)(?P<key>[A-Za-z0-9_.-]+)(?P=q)(?P<sep>\s*[:=]\s*)(?!//)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^,;&\s}\]]+)""")


def _redact_pair(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]):
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match['q']}{match['key']}{match['q']}{match['sep']}{quote}{REDACTED}{quote}"


def _redact_string(text: str) -> str:
    text = _EMBEDDED_PAIR.sub(_redact_pair, text)
    for pattern in SECRET_VALUE_PATTERNS.values():
        text = pattern.sub(REDACTED, text)
    return URL_CREDENTIALS.sub(lambda m: m["head"] + REDACTED, text)


def redact_text(text: str) -> str:
    """``text`` with token look-alikes, URL passwords and the values of secret-named embedded pairs
    replaced.

    JSON passed on the command line (``--settings '{"hf_token": ...}'``) is parsed and redacted
    structurally; other text falls back to a ``key: value``/``key=value`` scan.
    """
    stripped = text.strip()
    if stripped[:1] in {"{", "["}:
        try:
            return json.dumps(redact_value(json.loads(stripped)), sort_keys=True)
        except ValueError:
            pass
    return _redact_string(text)


def redact_value(value: Any, key: str | None = None) -> Any:
    """Deep copy of a JSON-like value with secret-keyed entries and token-like strings redacted."""
    if key is not None and is_secret_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def split_option(token: str) -> tuple[str, str | None]:
    """``--name=value`` -> (``--name``, ``value``); anything else -> (token, None)."""
    if token.startswith("-") and "=" in token:
        name, value = token.split("=", 1)
        return name, value
    return token, None


def secret_value_positions(argv: list[str]) -> set[int]:
    """Indices of argv tokens that are the separate value of a secret option (``--api-key X``)."""
    positions: set[int] = set()
    for i, token in enumerate(argv[:-1]):
        name, inline = split_option(token)
        if token.startswith("-") and inline is None and is_secret_key(name):
            if not argv[i + 1].startswith("--"):
                positions.add(i + 1)
    return positions


def redact_argv(argv: list[str]) -> list[str]:
    """argv with secret option values, ``KEY=secret`` tokens and HF-token look-alikes redacted."""
    hidden = secret_value_positions(argv)
    out: list[str] = []
    for i, token in enumerate(argv):
        if i in hidden:
            out.append(REDACTED)
            continue
        name, inline = split_option(token)
        if inline is None and "=" in token and not token.startswith("-"):
            name, inline = token.split("=", 1)  # KEY=VALUE style positional
        if inline is not None and is_secret_key(name):
            out.append(f"{name}={REDACTED}")
        elif inline is not None and token.startswith("-"):
            out.append(f"{name}={redact_text(inline)}")
        else:
            out.append(redact_text(token))
    return out
