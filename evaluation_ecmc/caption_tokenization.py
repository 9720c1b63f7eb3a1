"""Tokenisation for the COCO caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D).

- English (`language="en"`): the COCO caption code's own tokenizer, i.e. Stanford PTBTokenizer
  (`stanford-corenlp-3.4.1.jar` shipped in `pycocoevalcap`, flags `-preserveLines -lowerCase`) followed
  by the same punctuation removal (`pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS`). We call the
  jar ourselves instead of `PTBTokenizer.tokenize` because that wrapper writes its temporary file into
  the installed package folder and silently misaligns captions when a line goes missing; the tokens
  are identical (tests compare them). Needs Java (`java` on PATH).
- Chinese (`language="zh"`, MMDA is Chinese): the PTB tokenizer does not segment Chinese, and we use
  no word segmenter (no jieba): text is NFKC-normalised and lower-cased, every CJK character (Han,
  kana, hangul) becomes one token, runs of latin letters / digits stay one word, punctuation is
  dropped. Character-level n-grams are the common choice for Chinese captioning metrics; numbers are
  therefore not comparable with word-segmented Chinese scores.

Both return space-joined token strings: the "pre-tokenised" input the pycocoevalcap scorers expect.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unicodedata

from modeling_ecmc.vocabulary_ecmc import LANGUAGES

_CJK = "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
_CJK_TOKEN_RE = re.compile(rf"{_CJK}|(?:(?!{_CJK})[^\W_])+(?:['\u2019](?:(?!{_CJK})[^\W_])+)*")


def java_available() -> bool:
    return shutil.which("java") is not None


def require_java(what: str) -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            f"{what} needs Java (the COCO caption code runs Stanford PTBTokenizer and METEOR 1.5 as Java "
            "programs); install a JRE, e.g. `apt-get install default-jre-headless`, so that `java` is on PATH"
        )
    return java


def _ptb_jar() -> str:
    from pycocoevalcap.tokenizer import ptbtokenizer

    return os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)), ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)


def ptb_tokenize(texts: list[str]) -> list[str]:
    """The COCO caption code's PTB tokenisation of each text (lower-cased, punctuation removed)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    texts = [" ".join(str(t).split()) for t in texts]  # any line break inside a text would split it
    todo = [i for i, t in enumerate(texts) if t]
    out = [""] * len(texts)
    if not todo:
        return out
    java = require_java("PTB tokenisation")
    with tempfile.TemporaryDirectory(prefix="ecmc_ptb_") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(texts[i] for i in todo))
        proc = subprocess.run(
            [java, "-Dfile.encoding=UTF-8", "-cp", _ptb_jar(), "edu.stanford.nlp.process.PTBTokenizer",
             "-preserveLines", "-lowerCase", "-encoding", "utf-8", path],
            capture_output=True, check=False,
        )
    if proc.returncode:
        raise RuntimeError(f"PTBTokenizer failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-1000:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "" and len(lines) == len(todo) + 1:
        lines = lines[:-1]
    if len(lines) != len(todo):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(todo)} captions")
    for i, line in zip(todo, lines):
        out[i] = " ".join(w for w in line.rstrip().split(" ") if w and w not in PUNCTUATIONS)
    return out


def cjk_tokenize(text: str) -> str:
    """One token per CJK character, latin/digit runs kept as words, punctuation dropped, lower-cased."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return " ".join(_CJK_TOKEN_RE.findall(text))


def per_row_languages(language, n: int) -> list[str]:
    """One language per row: `language` is one language for all `n` rows or a list of one per row
    (an empty entry raises: resolve missing languages before, e.g. to the processor's default)."""
    languages = [language] * n if isinstance(language, str) else list(language)
    if len(languages) != n:
        raise ValueError(f"{len(languages)} languages for {n} rows")
    unknown = sorted({str(lang) for lang in languages if lang not in LANGUAGES})
    if unknown:
        raise ValueError(f"unknown caption language(s) {unknown}; choose from {LANGUAGES}")
    return languages


def _tokenize(texts: list[str], language: str) -> list[str]:
    if language == "en":
        return ptb_tokenize(texts)
    return [cjk_tokenize(t) for t in texts]


def tokenize_captions(texts: list[str], language="en") -> list[str]:
    """Tokenise a list of texts for the COCO scorers: PTB for English, characters for Chinese.
    `language`: one language, or a list of one per text (one tokeniser run per language)."""
    texts = list(texts)
    languages = per_row_languages(language, len(texts))
    if len(set(languages)) <= 1:
        return _tokenize(texts, languages[0]) if texts else []
    out = [None] * len(texts)
    for lang in dict.fromkeys(languages):
        rows = [i for i, x in enumerate(languages) if x == lang]
        for i, token_text in zip(rows, _tokenize([texts[i] for i in rows], lang)):
            out[i] = token_text
    return out
