"""Tokenisation for the COCO scorers (`evaluation_ecmc.caption_tokenization`): PTB exactly as the COCO
caption code, characters for Chinese, one language per text."""

import pytest

from caption_samples import EN_PRED, EN_REF, parts_independently
from evaluation_ecmc.caption_tokenization import cjk_tokenize, java_available, ptb_tokenize, tokenize_captions


@pytest.mark.skipif(not java_available(), reason="the COCO caption code needs Java")
def test_ptb_tokenisation_is_the_coco_tokenizers():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = [parts_independently(c)["caption"] for c in EN_PRED + EN_REF] + ["Don't  worry -- it's (fine)!", "café “quoted”"]
    # (the COCO code keeps "-lrb-"/"-rrb-": its punctuation list has only the upper-case forms)
    ours = ptb_tokenize(texts)
    theirs = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts) if t})
    assert ours == [theirs[i][0] if t else "" for i, t in enumerate(texts)]
    assert ours[-2] == "do n't worry it 's -lrb- fine -rrb-" and ours[-1] == "café quoted"
    assert ptb_tokenize(["", "  ", "Hello"]) == ["", "", "hello"]


def test_chinese_is_split_into_characters_keeping_latin_words():
    assert cjk_tokenize("说话人情绪低落，ＡＢＣ Garden 2号。") == "说 话 人 情 绪 低 落 abc garden 2 号"
    assert cjk_tokenize("") == "" and cjk_tokenize("。！") == ""


@pytest.mark.skipif(not java_available(), reason="the COCO caption code needs Java")
def test_each_text_is_tokenised_in_its_own_language():
    texts = ["Don't worry.", "说话人情绪低落。", "It's fine."]
    assert tokenize_captions(texts, ["en", "zh", "en"]) == [ptb_tokenize([texts[0]])[0], cjk_tokenize(texts[1]),
                                                            ptb_tokenize([texts[2]])[0]]
    assert tokenize_captions(texts, "zh") == [cjk_tokenize(t) for t in texts]
    with pytest.raises(ValueError, match="unknown caption language"):
        tokenize_captions(texts, ["en", "fr", "en"])
