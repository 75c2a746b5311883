"""The gradebook CSV and the feedback files: written by the grader alone.

Every file is written atomically (a temporary file in the same folder, then
``os.replace``).  Every gradebook row carries a ``signature``, an HMAC-SHA256
of the row under a secret kept next to the gradebook (mode 0600, never
inside a sandbox): when a run is resumed, only rows whose signature checks
out are kept, and the row also records a hash of the student's feedback
files, so a feedback file changed or swapped by anyone else is noticed too.

Feedback files are named by :func:`feedback_stem`: a readable ASCII slug
of the student's name plus a short hash of the exact name, so ``Zoë Ann``
and ``Zoé Ann`` (or two names in a non-Latin script) never share a file.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import tempfile
import threading
import unicodedata
from pathlib import Path

__all__ = ["Gradebook", "atomic_write", "feedback_stem", "fmt", "row_for", "FINAL_STATUSES"]

#: rows with these statuses are kept on resume (the rest are graded again)
FINAL_STATUSES = ("graded", "unreadable")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, data: str | bytes, private: bool = False) -> None:
    """Write ``path`` via a temporary file in the same folder and os.replace.

    The file gets the usual permissions (0666 less the umask), or 0600 if
    ``private`` (answer keys, the gradebook's secret).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o600 if private else _MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def fmt(x: float) -> str:
    x = round(float(x), 4)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def feedback_stem(student: str) -> str:
    """``<ascii slug>-<10 hex digits of sha256(name)>``, unique per exact name."""
    ascii_name = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:40] or "student"
    return f"{slug}-{hashlib.sha256(student.encode('utf-8')).hexdigest()[:10]}"


def _short_notes(report: dict) -> str:
    notes = report["notes"]
    if not notes:
        return ""
    first = notes[0]
    return first if len(notes) == 1 else f"{first} (+{len(notes) - 1} more, see feedback)"


def row_for(student: str, report: dict, status: str, feedback_sha256: str = "") -> dict:
    row = {"student": student, "chapter": report["chapter"], "total": fmt(report["total"]),
           "possible": fmt(report["possible"]), "status": status, "notes": _short_notes(report),
           "file": report["file"], "sha256": report["sha256"], "key": report.get("key", ""),
           "sandbox": report.get("sandbox", ""), "feedback_sha256": feedback_sha256}
    for label, q in report["questions"].items():
        row[label] = fmt(q["points"])
    return row


class Gradebook:
    """Rows in memory; the CSV on disk is rewritten whole after every change."""

    def __init__(self, path: Path, labels: list[str]):
        self.path = Path(path)
        self.labels = labels
        self.rows: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.written: bytes | None = None
        self.secret = self._secret()

    @property
    def header(self) -> list[str]:
        return ["student", "chapter", *self.labels, "total", "possible", "status", "notes", "file",
                "sha256", "key", "sandbox", "feedback_sha256", "signature"]

    @property
    def secret_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.secret")

    def _secret(self) -> bytes:
        try:
            return bytes.fromhex(self.secret_path.read_text().strip())
        except (OSError, ValueError):
            secret = secrets.token_bytes(32)
            atomic_write(self.secret_path, secret.hex() + "\n", private=True)
            return secret

    def sign(self, row: dict) -> str:
        fields = [str(row.get(h, "")) for h in self.header[:-1]]
        msg = json.dumps(fields, ensure_ascii=False).encode("utf-8")
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]

    def verified(self, row: dict) -> bool:
        return hmac.compare_digest(str(row.get("signature", "")), self.sign(row))

    def load_existing(self, keep: bool) -> tuple[dict[str, dict], list[str]]:
        """(rows signed by this grader, students whose rows were not) of an
        existing gradebook with the same columns, for resuming.

        An existing file that is not resumed whole (``keep`` false, other
        columns, or rows that fail their signature) is first copied to
        ``<name>.bak`` (``.bak1``, ...), so nothing written before is lost.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}, []
        rows = list(csv.DictReader(io.StringIO(text)))
        good, forged = {}, []
        if keep and rows and list(rows[0].keys()) == self.header:
            for r in rows:
                if self.verified(r):
                    good[r["student"]] = r
                else:
                    forged.append(r["student"])
            if not forged:
                return good, []
        n = 0
        while (backup := self.path.with_name(self.path.name + (f".bak{n}" if n else ".bak"))).exists():
            n += 1
        atomic_write(backup, text)
        return good, forged

    def render(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header)
        for student in sorted(self.rows):
            r = self.rows[student]
            w.writerow([r.get(h, "") for h in self.header])
        return buf.getvalue().encode("utf-8")

    def set(self, student: str, row: dict) -> None:
        with self.lock:
            self.rows[student] = {**row, "signature": self.sign(row)}
            self.flush()

    def flush(self) -> None:
        data = self.render()
        atomic_write(self.path, data)
        self.written = data

    def tampered(self) -> bool:
        try:
            return self.written is not None and self.path.read_bytes() != self.written
        except OSError:
            return True
