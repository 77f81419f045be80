"""The character encodings pg_dump writes, and what Python calls them.

A dump's text is in its database's encoding, as ``SET client_encoding`` says (plain SQL)
or its header does (archives): every server encoding keeps ASCII bytes for SQL's syntax,
so a dump's statements are read as bytes and only names are decoded. The client-only
encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) can hide a quote or a backslash in a
character's second byte; pg_dump never writes them (it writes the server's encoding)."""

from __future__ import annotations

PYTHON_CODECS = {
    "SQL_ASCII": "latin-1",  # bytes as they are: no conversion anywhere
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "EUC_JP": "euc_jp",
    "EUC_CN": "gb2312",
    "EUC_KR": "euc_kr",
    "EUC_JIS_2004": "euc_jis_2004",
    "EUC_TW": "latin-1",  # no Python codec: names are shown byte for byte
    "MULE_INTERNAL": "latin-1",
    "LATIN1": "latin-1",
    "LATIN2": "iso8859-2",
    "LATIN3": "iso8859-3",
    "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9",
    "LATIN6": "iso8859-10",
    "LATIN7": "iso8859-13",
    "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15",
    "LATIN10": "iso8859-16",
    "ISO_8859_5": "iso8859-5",
    "ISO_8859_6": "iso8859-6",
    "ISO_8859_7": "iso8859-7",
    "ISO_8859_8": "iso8859-8",
    "WIN866": "cp866",
    "WIN874": "cp874",
    "WIN1250": "cp1250",
    "WIN1251": "cp1251",
    "WIN1252": "cp1252",
    "WIN1253": "cp1253",
    "WIN1254": "cp1254",
    "WIN1255": "cp1255",
    "WIN1256": "cp1256",
    "WIN1257": "cp1257",
    "WIN1258": "cp1258",
    "KOI8R": "koi8-r",
    "KOI8U": "koi8-u",
}
CLIENT_ONLY = {"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030", "JOHAB"}


def canonical(name: str) -> str:
    """PostgreSQL's spelling of an encoding name ('latin1', 'utf-8' -> LATIN1, UTF8)."""
    upper = name.strip().upper().replace("-", "")
    aliases = {"ISO88591": "LATIN1", "UTF8": "UTF8", "WIN": "WIN1251", "ALT": "WIN866"}
    return aliases.get(upper, upper if upper in PYTHON_CODECS or upper in CLIENT_ONLY else name)


def python_codec(name: str | None) -> str | None:
    """The codec that decodes text in PostgreSQL encoding ``name``; None if unknown."""
    if not name:
        return None
    return PYTHON_CODECS.get(canonical(name))
