"""Translation of free text: the null default, and the CTranslate2 backend on tiny Argos packages built here."""

from __future__ import annotations

import io
import itertools
import json
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fusioncell.errors import ConfigError
from fusioncell.hotline.translate import (
    CTranslate2Translator,
    NullTranslator,
    Translation,
    translator_from_settings,
)

ARABIC = ["مرحبا بالعالم", "صباح الخير", "الحدود هادئة", "أرسل دورية الآن", "شكرا جزيلا"]
ENGLISH = ["hello world", "good morning", "the border is quiet", "send a patrol now", "thank you"]


def build_package(dest: Path, source: str, target: str, corpus: list[str], words: list[str], *,
                  version: str = "1.0", target_prefix: str = "") -> Path:
    """An Argos-format package whose model answers any input with `words`: nothing is downloaded.

    The model is a 1+1 layer Transformer with zero attention and feed-forward weights, so each decoder
    step only sees the previous token's embedding. Token k of the chain <s>, words..., </s> gets axis k as
    its embedding, and the projection row of token k+1 reads axis k: greedy or beam search walks the chain.
    """
    import numpy as np
    import sentencepiece as spm
    from ctranslate2 import specs
    from ctranslate2.specs.model_spec import index_spec

    dest.mkdir(parents=True)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus * 4), model_writer=proto, vocab_size=40,
                                   hard_vocab_limit=False, minloglevel=2)
    (dest / "sentencepiece.model").write_bytes(proto.getvalue())
    tokenizer = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    source_vocab = [tokenizer.id_to_piece(i) for i in range(tokenizer.get_piece_size())]
    target_vocab = ["<unk>", "<s>", "</s>", *words]

    d, ffn = 8, 16
    spec = specs.TransformerSpec.from_config((1, 1), 2)
    shapes = {"self_attention/linear_0": (3 * d, d), "attention/linear_1": (2 * d, d),
              "ffn/linear_0": (ffn, d), "ffn/linear_1": (d, ffn)}
    for name, value in spec.variables().items():
        if value is not None:
            continue
        scope, attr = name.rsplit("/", 1)
        if attr in ("gamma", "beta"):
            shape = (d,)
        elif "embeddings" in scope or "projection" in scope:
            shape = (len(source_vocab if name.startswith("encoder") else target_vocab), d)
        else:
            shape = next((s for key, s in shapes.items() if scope.endswith(key)), (d, d))
        setattr(index_spec(spec, scope), attr, np.full(shape, attr == "gamma", dtype=np.float32))
    chain = [1, *range(3, 3 + len(words)), 2]
    for axis, (token, following) in enumerate(itertools.pairwise(chain)):
        spec.decoder.embeddings.weight[token, axis] = 10.0
        spec.decoder.projection.weight[following, axis] = 5.0
    spec.register_source_vocabulary(source_vocab)
    spec.register_target_vocabulary(target_vocab)
    spec.validate()
    spec.optimize()
    (dest / "model").mkdir()
    spec.save(str(dest / "model"))

    metadata = {"package_version": version, "argos_version": "1.9", "from_code": source, "from_name": source,
                "to_code": target, "to_name": target, "type": "translate"}
    if target_prefix:
        metadata["target_prefix"] = target_prefix
    (dest / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return dest


def zip_package(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return archive


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mt-models")
    build_package(root / "translate-ar_en-1_0", "ar", "en", ARABIC, ["▁hello", "▁world"])
    build_package(root / "translate-en_he-1_0", "en", "he", ENGLISH, ["▁שלום"])
    (root / "README.txt").write_text("not a package")
    return root


def test_null_translator_translates_nothing(tmp_path):
    null = NullTranslator()
    assert null.translate("مرحبا", source="ar", target="en") is None
    assert null.pairs() == set()
    assert isinstance(translator_from_settings(None), NullTranslator)
    assert isinstance(translator_from_settings(""), NullTranslator)
    assert isinstance(translator_from_settings(str(tmp_path)), NullTranslator)  # no models in it
    assert isinstance(translator_from_settings(str(tmp_path / "missing")), NullTranslator)


def test_factory_picks_ctranslate2_when_models_are_present(models_dir):
    assert isinstance(translator_from_settings(str(models_dir)), CTranslate2Translator)


def test_pairs_include_the_english_pivot(models_dir):
    assert CTranslate2Translator(models_dir).pairs() == {("ar", "en"), ("en", "he"), ("ar", "he")}


def test_direct_translation_is_labelled_machine(models_dir):
    result = CTranslate2Translator(models_dir).translate("مرحبا بالعالم", source="ar", target="en")
    assert result == Translation(text="hello world", source="ar", target="en",
                                 engine="ctranslate2:translate-ar_en-1_0", machine=True)


def test_sentences_and_lines_are_translated_one_by_one(models_dir):
    result = CTranslate2Translator(models_dir).translate("مرحبا. كيف حالك؟\n\nشكرا", source="ar", target="en")
    assert result is not None
    assert result.text == "hello world hello world\n\nhello world"


def test_pivot_through_english_names_both_legs(models_dir):
    result = CTranslate2Translator(models_dir).translate("الحدود هادئة", source="AR", target="he")
    assert result is not None
    assert (result.text, result.source, result.target) == ("שלום", "ar", "he")
    assert result.engine == "ctranslate2:translate-ar_en-1_0 + translate-en_he-1_0"
    assert result.machine is True


def test_no_route_same_language_or_blank_text_is_not_translated(models_dir):
    translator = CTranslate2Translator(models_dir)
    assert translator.translate("שלום", source="he", target="ar") is None
    assert translator.translate("hello", source="en", target="en") is None
    assert translator.translate("  \n ", source="ar", target="en") is None


def test_each_model_is_loaded_once_even_under_concurrent_requests(models_dir, monkeypatch):
    import ctranslate2

    loads: list[str] = []
    real = ctranslate2.Translator

    def counting(path, *args, **kwargs):
        loads.append(Path(path).parent.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ctranslate2, "Translator", counting)
    translator = CTranslate2Translator(models_dir)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: translator.translate("مرحبا", source="ar", target="he"), range(16)))
    assert {r.text for r in results if r} == {"שלום"} and len(results) == 16
    translator.translate("مرحبا", source="ar", target="en")
    assert sorted(loads) == ["translate-ar_en-1_0", "translate-en_he-1_0"]


def test_zipped_argosmodel_is_read_in_place(models_dir, tmp_path):
    zip_package(models_dir / "translate-en_he-1_0", tmp_path / "translate-en_he-1_0.argosmodel")
    translator = CTranslate2Translator(tmp_path)
    assert translator.pairs() == {("en", "he")}
    result = translator.translate("good morning", source="en", target="he")
    assert result is not None
    assert (result.text, result.engine) == ("שלום", "ctranslate2:translate-en_he-1_0")


def test_target_prefix_is_sent_and_stripped_and_newest_version_wins(tmp_path):
    build_package(tmp_path / "old", "en", "ar", ENGLISH, ["▁old"], version="1.0")
    build_package(tmp_path / "multi", "en", "ar", ENGLISH, ["__ar__", "▁salam"], version="1.1",
                  target_prefix="__ar__")
    result = CTranslate2Translator(tmp_path).translate("thank you", source="en", target="ar")
    assert result is not None
    assert (result.text, result.engine) == ("salam", "ctranslate2:multi")


def test_what_is_not_a_translation_package_is_skipped(tmp_path):
    (tmp_path / "sbd").mkdir()
    (tmp_path / "sbd" / "metadata.json").write_text(json.dumps({"type": "sbd", "from_code": "en"}))
    (tmp_path / "incomplete").mkdir()
    (tmp_path / "incomplete" / "metadata.json").write_text(json.dumps({"from_code": "en", "to_code": "fr"}))
    (tmp_path / "broken.argosmodel").write_bytes(b"not a zip")
    assert CTranslate2Translator(tmp_path).pairs() == set()
    assert isinstance(translator_from_settings(str(tmp_path)), NullTranslator)


def test_missing_extra_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # makes `import ctranslate2` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'fusioncell\[mt\]'"):
        CTranslate2Translator(tmp_path)
