"""Reading a customer file as its owner wrote it: delimiter and text encoding.

A CSV exported from a spreadsheet in much of Europe is `;`-separated and often Latin-1
(Windows-1252). The delimiter is sniffed from the first lines among `, ; TAB |` unless
given; the encoding is UTF-8 unless given, and a file that is not UTF-8 is read as
Windows-1252 (which decodes every Latin-1 letter the same way), said in `notes` so the
owner can pass `--encoding` when that guess is wrong. Every cell is read as text, so
nothing is coerced before validation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fedseg.common.table_problems import DataError

DELIMITERS = ",;\t|"
FALLBACK_ENCODING = "cp1252"
SNIFF_BYTES = 64 * 1024


@dataclass
class ReadOptions:
    """How to read a CSV; None means sniff (delimiter) or UTF-8 first (encoding)."""

    delimiter: str | None = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)  # what was guessed, for the owner


def _decode(raw: bytes, path: Path, options: ReadOptions) -> tuple[str, str]:
    """(text, encoding): the given encoding, else UTF-8, else Windows-1252 (with a note)."""
    if options.encoding:
        try:
            return raw.decode(options.encoding), options.encoding
        except LookupError:
            raise DataError(f"{path}: unknown encoding {options.encoding!r} (try utf-8, latin-1, cp1252)") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not {options.encoding} (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            "pass the file's encoding with --encoding") from None
    text, encoding, bad = guess_encoding(raw)
    if bad is not None:
        line = raw[:bad].count(b"\n") + 1
        options.notes.append(f"{path}: not UTF-8 (byte 0x{raw[bad]:02x} on line {line}); read as "
                             f"{FALLBACK_ENCODING} (Latin-1); pass --encoding if that is wrong")
    return text, encoding


def guess_encoding(raw: bytes, sample: bool = False) -> tuple[str, str, int | None]:
    """(text, encoding, offset of the first non-UTF-8 byte or None): UTF-8, else
    Windows-1252. The one rule for whole files and for the first bytes of a big one
    (`sample`: a character cut at the end of the sample is not evidence against UTF-8)."""
    try:
        return raw.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError as exc:
        if sample and exc.start >= len(raw) - 4:
            return raw[: exc.start].decode("utf-8-sig"), "utf-8", None
        return raw.decode(FALLBACK_ENCODING, errors="replace"), FALLBACK_ENCODING, exc.start


def sniff_delimiter(text: str) -> str:
    """The delimiter of the header and first lines, among `DELIMITERS` (`,` if unsure)."""
    sample = "\n".join(text[:SNIFF_BYTES].splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] > 0 else ","


def read_csv(path: Path, options: ReadOptions) -> pd.DataFrame:
    """A CSV as text cells, its delimiter sniffed and its encoding detected as above."""
    text, _ = _decode(path.read_bytes(), path, options)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    delimiter = options.delimiter or sniff_delimiter(text)
    if options.delimiter is None and delimiter != ",":
        options.notes.append(f"{path}: columns separated by {delimiter!r} (sniffed; --delimiter sets it)")
    import io

    frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                        na_filter=False, engine="python" if len(delimiter) > 1 else "c")
    return frame


def one_column_hint(columns: list[str]) -> str:
    """A hint when the header came out as one column holding another delimiter."""
    if len(columns) == 1:
        inside = [d for d in DELIMITERS if d in columns[0]]
        if inside:
            return f"; the header is one column containing {inside[0]!r}: pass --delimiter {inside[0]!r}"
    return ""
