"""Machine translation of free text, offline only: a null default and a CTranslate2 backend for Argos models."""

from __future__ import annotations

import json
import logging
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fusioncell.errors import ConfigError

log = logging.getLogger(__name__)

# Argos publishes nearly every pair to and from English, so English is the bridge between two other languages.
PIVOT = "en"
# Argos splits sentences with stanza; we split on end punctuation (Latin, Arabic, CJK) and keep line breaks,
# which is enough for hotline messages and needs no extra model.
_SENTENCE_END = re.compile(r"(?<=[.!?؟۔。])\s+")


@dataclass(frozen=True)
class Translation:
    text: str
    source: str  # language code of the original
    target: str
    engine: str  # e.g. "ctranslate2:translate-ar_en-1_0", with a pivot "...ar_en-1_0 + translate-en_he-1_0"
    machine: bool = True  # always True: shown labelled as machine translation beside the original


class Translator(Protocol):
    def translate(self, text: str, *, source: str, target: str) -> Translation | None: ...

    def pairs(self) -> set[tuple[str, str]]: ...


class NullTranslator:
    """The default: nothing is translated, the original is shown alone."""

    def translate(self, text: str, *, source: str, target: str) -> Translation | None:
        return None

    def pairs(self) -> set[tuple[str, str]]:
        return set()


@dataclass(frozen=True)
class _Package:
    name: str
    source: str
    target: str
    version: tuple[int, ...]
    target_prefix: str  # multilingual models want the target language token first, e.g. "__he__"
    path: Path  # a folder, or a zipped .argosmodel file
    root: str | None  # None for a folder; for a zip, the member prefix of the package ("" or "name/")


def _package(path: Path, metadata: dict[str, Any], root: str | None) -> _Package | None:
    if metadata.get("type", "translate") != "translate" or not metadata.get("from_code") or not metadata.get("to_code"):
        return None
    name = path.name.removesuffix(".argosmodel")
    version = tuple(int(n) for n in re.findall(r"\d+", str(metadata.get("package_version", ""))))
    return _Package(name, metadata["from_code"].lower(), metadata["to_code"].lower(), version,
                    metadata.get("target_prefix") or "", path, root)


def _read_folder(path: Path) -> _Package | None:
    if not (path / "metadata.json").is_file():
        return None
    if not (path / "model").is_dir() or not (path / "sentencepiece.model").is_file():
        # Newer Argos packages may tokenize with bpe.model (Moses + BPE); we support SentencePiece only.
        log.warning("skipping %s: needs model/ and sentencepiece.model", path)
        return None
    return _package(path, json.loads((path / "metadata.json").read_text(encoding="utf-8")), None)


def _read_zip(path: Path) -> _Package | None:
    # A downloaded .argosmodel is a zip of one package folder; reading it in place spares the operator unpacking.
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for meta in sorted(n for n in names if n.endswith("metadata.json") and n.count("/") <= 1):
            root = meta.removesuffix("metadata.json")
            if root + "sentencepiece.model" in names and any(n.startswith(root + "model/") for n in names):
                return _package(path, json.loads(archive.read(meta)), root)
    log.warning("skipping %s: needs metadata.json, model/ and sentencepiece.model", path)
    return None


def find_packages(models_dir: Path) -> dict[tuple[str, str], _Package]:
    """The Argos packages directly inside models_dir, by (source, target); the newest version wins a pair."""
    found: dict[tuple[str, str], _Package] = {}
    if not models_dir.is_dir():
        log.warning("machine translation models directory %s does not exist", models_dir)
        return found
    for path in sorted(models_dir.iterdir()):
        try:
            if path.is_dir():
                package = _read_folder(path)
            elif path.suffix == ".argosmodel" and zipfile.is_zipfile(path):
                package = _read_zip(path)
            else:
                continue
        except (OSError, ValueError, TypeError, AttributeError, zipfile.BadZipFile) as exc:  # one bad package, not all
            log.warning("skipping %s: %s", path, exc)
            continue
        if package is None:
            continue
        pair = (package.source, package.target)
        if pair not in found or package.version > found[pair].version:
            found[pair] = package
    return found


class CTranslate2Translator:
    """Translates with Argos-format CTranslate2 models from a local directory; never downloads anything."""

    def __init__(self, models_dir: Path, *, device: str = "cpu", threads: int = 1) -> None:
        # Imported here so fusioncell runs without the optional extra when translation is not configured.
        try:
            import ctranslate2
            import sentencepiece
        except ImportError as exc:
            raise ConfigError("machine translation needs the optional extra: pip install 'fusioncell[mt]'") from exc
        self._ct2 = ctranslate2
        self._spm = sentencepiece
        self._device = device
        self._threads = threads
        self._packages = find_packages(Path(models_dir))
        # Models are large and slow to load: load each on first use, once, even under concurrent requests.
        self._loaded: dict[Path, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def pairs(self) -> set[tuple[str, str]]:
        """Every pair that can be translated, directly or through English."""
        direct = set(self._packages)
        pivoted = {(s, t) for s, p in direct if p == PIVOT for p2, t in direct if p2 == PIVOT and s != t}
        return direct | pivoted

    def translate(self, text: str, *, source: str, target: str) -> Translation | None:
        source, target = source.lower(), target.lower()
        route = self._route(source, target)
        if route is None or not text.strip():
            return None
        result = text
        for package in route:
            result = self._run(package, result)
        return Translation(result, source, target, "ctranslate2:" + " + ".join(p.name for p in route))

    def _route(self, source: str, target: str) -> list[_Package] | None:
        if source == target:
            return None
        if (source, target) in self._packages:
            return [self._packages[source, target]]
        if (source, PIVOT) in self._packages and (PIVOT, target) in self._packages:
            return [self._packages[source, PIVOT], self._packages[PIVOT, target]]
        return None

    def _load(self, package: _Package) -> tuple[Any, Any]:
        with self._lock:
            if package.path not in self._loaded:
                self._loaded[package.path] = self._open(package)
            return self._loaded[package.path]

    def _open(self, package: _Package) -> tuple[Any, Any]:
        options = {"device": self._device, "inter_threads": 1, "intra_threads": self._threads}
        if package.root is None:
            translator = self._ct2.Translator(str(package.path / "model"), **options)
            tokenizer = self._spm.SentencePieceProcessor(model_file=str(package.path / "sentencepiece.model"))
            return translator, tokenizer
        with zipfile.ZipFile(package.path) as archive:
            model = package.root + "model/"
            files = {n.removeprefix(model): archive.read(n)
                     for n in archive.namelist() if n.startswith(model) and not n.endswith("/")}
            tokenizer = self._spm.SentencePieceProcessor(model_proto=archive.read(package.root + "sentencepiece.model"))
        # With files given, CTranslate2 reads the model from memory and the path is only its name.
        translator = self._ct2.Translator(f"{package.path}/{model}", files=files, **options)
        return translator, tokenizer

    def _run(self, package: _Package, text: str) -> str:
        translator, tokenizer = self._load(package)
        paragraphs = text.split("\n")
        sentences = [(i, s) for i, p in enumerate(paragraphs) for s in _SENTENCE_END.split(p.strip()) if s]
        batch = [tokenizer.encode(s, out_type=str) for _, s in sentences]
        prefix = [[package.target_prefix]] * len(batch) if package.target_prefix else None
        # The same decoding options as Argos Translate, so its models behave as their authors tested them.
        results = translator.translate_batch(batch, target_prefix=prefix, beam_size=4, max_batch_size=32,
                                             replace_unknowns=True, length_penalty=0.2) if batch else []
        out: list[list[str]] = [[] for _ in paragraphs]
        for (i, _), result in zip(sentences, results, strict=True):
            tokens = result.hypotheses[0]
            if package.target_prefix and tokens[:1] == [package.target_prefix]:
                tokens = tokens[1:]
            # Argos detokenizes by hand: SentencePiece marks a word start with "▁".
            out[i].append("".join(tokens).replace("▁", " ").strip())
        return "\n".join(" ".join(parts) for parts in out)


def translator_from_settings(models_dir: str | None) -> Translator:
    """The configured translator: CTranslate2 when models_dir holds Argos packages, otherwise the null one."""
    if not models_dir or not find_packages(Path(models_dir)):
        return NullTranslator()
    return CTranslate2Translator(Path(models_dir))
